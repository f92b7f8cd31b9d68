"""``hf:<model id or local dir>``: a transformers ``CLIPModel`` behind the `Encoder` protocol.

Real users point this at real CLIP weights on the Hugging Face hub
(``hf:openai/clip-vit-base-patch32``) or at a local directory written by ``save_pretrained``.
Loading is deliberately conservative:

- weights are read from safetensors only (``use_safetensors=True``): pickle checkpoints are refused;
- images go through the PIL/numpy image processor, so torchvision is never needed;
- the model is loaded in float32 and put in eval mode on the resolved device.

The encoder ``id`` is ``hf:<model>@<fingerprint>``: for a local directory the fingerprint is a
sha256 over the safetensors weights and the model/processor configuration files; for a hub model it
is the resolved commit hash (falling back to the requested revision when it cannot be resolved).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modalchorus.encoders.base import (
    batches,
    check_texts,
    l2_normalise,
    resolve_device,
    to_numpy,
)

logger = logging.getLogger(__name__)

#: Alignment scopes understood by `HFClipEncoder.trainable_parameters`, cheapest first.
SCOPES: tuple[str, ...] = ("projections", "last-blocks", "all")

#: Number of hex digits of the sha256 fingerprint kept in the encoder id.
FINGERPRINT_CHARS = 12

# Non-weight files that also determine the embeddings (architecture, preprocessing, tokenisation).
# They are part of a local directory's fingerprint, next to every ``*.safetensors`` file.
_FINGERPRINT_FILES: tuple[str, ...] = (
    "config.json",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)

# (resolved dir, ((file name, size, mtime_ns), ...)) -> fingerprint
_FINGERPRINT_CACHE: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def _looks_like_path(spec: str) -> bool:
    """Whether ``spec`` is clearly meant as a filesystem path rather than a hub repo id."""
    return (
        spec.startswith(("/", "./", "../", "~", ".\\", "..\\", "\\"))
        or spec in (".", "..")
        or os.path.isabs(spec)
    )


def _fingerprint_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors"))
    files += [model_dir / name for name in _FINGERPRINT_FILES if (model_dir / name).is_file()]
    return files


def local_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """Fingerprint a local model directory: sha256 of its weights and configuration.

    Hashes every ``*.safetensors`` file plus the configuration files that shape the embeddings
    (``config.json``, preprocessor and tokenizer files), names included. The result is cached per
    directory and invalidated when any file's size or modification time changes.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A directory written by ``save_pretrained``.

    Returns
    -------
    str
        The first `FINGERPRINT_CHARS` hex digits of the sha256.
    """
    root = Path(model_dir).expanduser().resolve()
    files = _fingerprint_files(root)
    stats = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(root), stats)
    cached = _FINGERPRINT_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    fingerprint = digest.hexdigest()[:FINGERPRINT_CHARS]
    _FINGERPRINT_CACHE[key] = fingerprint
    return fingerprint


def _hub_commit(model: str, revision: str | None) -> str | None:
    """Best-effort commit hash a hub ``revision`` resolves to (from the local cache path)."""
    from transformers.utils.hub import cached_file, extract_commit_hash

    try:
        resolved = cached_file(model, "config.json", revision=revision)
    except (OSError, ValueError):  # pragma: no cover - config.json was just loaded
        return None
    return extract_commit_hash(resolved, None)


class HFClipEncoder:
    """A transformers ``CLIPModel`` (+ tokenizer + PIL image processor) as an `Encoder`.

    Parameters
    ----------
    model : str
        A hub model id (``"openai/clip-vit-base-patch32"``) or a local directory written by
        ``save_pretrained`` (it must hold ``*.safetensors`` weights).
    device : str, optional
        ``"cpu"``, ``"cuda"`` or ``None``/``"auto"`` (CUDA when available).
    revision : str, optional
        Hub revision (branch, tag or commit). Ignored for local directories.

    Attributes
    ----------
    id : str
        ``"hf:<model>@<fingerprint>"``; changes whenever the loaded weights change.
    dim : int
        Projection dimension ``d`` of the shared space.
    device : str
        Device the model lives on.
    model : transformers.CLIPModel
        The loaded model, in eval mode, float32.
    tokenizer : transformers.PreTrainedTokenizerBase
        Text tokenizer.
    image_processor : transformers.BaseImageProcessor
        PIL/numpy image processor (never the torchvision one).
    max_text_length : int
        Texts are truncated to this many tokens (the text tower's position limit).

    Raises
    ------
    ValueError
        Empty ``model``, a path that is a file, or a model that is not a CLIP model.
    FileNotFoundError
        A local path that does not exist, or a local directory without safetensors weights.
    OSError
        The model could not be loaded from the hub (unknown id, offline without a cached copy,
        no safetensors weights, ...). The message names the model.

    Notes
    -----
    Fine-tuning the model in place (see `trainable_parameters`) does not change ``id``; whoever
    tunes it must version the result (e.g. export it and load it back).
    """

    def __init__(self, model: str, device: str | None = None, revision: str | None = None) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError("HFClipEncoder needs a model: a hub model id or a local directory")
        model = model.strip()
        self.device = resolve_device(device)
        self.revision = revision

        local = Path(model).expanduser()
        if local.is_dir():
            if not any(local.glob("*.safetensors")):
                raise FileNotFoundError(
                    f"no *.safetensors weights in local model directory {str(local)!r}; "
                    "pickle checkpoints (*.bin) are not loaded - re-save the model with "
                    "save_pretrained(..., safe_serialization=True)"
                )
            self.model_name = str(local.resolve())
            self.is_local = True
            source = self.model_name
        elif local.exists():
            raise ValueError(f"hf model {model!r} is a file; expected a model directory or hub id")
        elif _looks_like_path(model):
            raise FileNotFoundError(f"hf model directory {model!r} does not exist")
        else:
            self.model_name = model
            self.is_local = False
            source = model

        self._load(source, revision)

        if self.is_local:
            fingerprint = local_fingerprint(self.model_name)
        else:
            fingerprint = _hub_commit(source, revision) or revision or "main"
        self.id = f"hf:{self.model_name}@{fingerprint}"
        self.dim = int(self.model.config.projection_dim)
        text_cfg = self.model.config.text_config
        limit = int(text_cfg.max_position_embeddings)
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < limit:
            limit = tok_limit
        self.max_text_length = limit
        logger.info("loaded %s on %s (dim %d)", self.id, self.device, self.dim)

    # ------------------------------------------------------------------ loading
    @contextlib.contextmanager
    def _load_errors(self, source: str) -> Iterator[None]:
        """Turn transformers/hub loading failures into an `OSError` naming the model."""
        what = "local directory" if self.is_local else "hub model"
        try:
            yield
        except (OSError, ValueError) as err:  # ValueError: e.g. an invalid hub repo id
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise OSError(f"could not load CLIP {what} {source!r}{offline}: {err}") from err

    def _load(self, source: str, revision: str | None) -> None:
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, CLIPModel

        major = _transformers_major()
        hub_kwargs = {} if self.is_local else {"revision": revision}
        with self._load_errors(source):
            config = AutoConfig.from_pretrained(source, **hub_kwargs)
        if config.model_type != "clip":
            raise ValueError(
                f"hf model {source!r} is a {config.model_type!r} model; HFClipEncoder loads "
                "CLIP models (model_type 'clip') only"
            )
        dtype_kwarg = "dtype" if major >= 5 else "torch_dtype"
        # The PIL/numpy image processor: transformers 5 selects it with ``backend="pil"``, 4.x with
        # ``use_fast=False``. The torchvision ("fast") one would need torchvision.
        backend_kwargs = {"backend": "pil"} if major >= 5 else {"use_fast": False}
        with self._load_errors(source):
            model = CLIPModel.from_pretrained(
                source,
                config=config,
                use_safetensors=True,
                **{dtype_kwarg: torch.float32},
                **hub_kwargs,
            )
            self.tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
            self.image_processor = AutoImageProcessor.from_pretrained(
                source, **backend_kwargs, **hub_kwargs
            )
        self.model = model.to(self.device).eval()

    # ----------------------------------------------------------------- encoding
    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Run in eval mode under ``torch.inference_mode``, restoring the training flag after."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(was_training)

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected, unnormalised image features.

        Computed from the towers directly (pooled output -> projection), which means the same
        thing in every transformers version (``get_image_features`` returns a tensor in 4.x and a
        ``BaseModelOutputWithPooling`` whose ``pooler_output`` is projected in 5.x).

        Parameters
        ----------
        pixel_values : torch.Tensor
            Shape (n, 3, H, W), as produced by the image processor.

        Returns
        -------
        torch.Tensor
            Shape (n, d).
        """
        pooled = self.model.vision_model(pixel_values=pixel_values).pooler_output
        return self.model.visual_projection(pooled)

    def text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Projected, unnormalised text features.

        Parameters
        ----------
        input_ids : torch.Tensor
            Shape (m, L) token ids, ``L <= max_text_length``.
        attention_mask : torch.Tensor, optional
            Shape (m, L); 1 for real tokens, 0 for padding.

        Returns
        -------
        torch.Tensor
            Shape (m, d).
        """
        pooled = self.model.text_model(
            input_ids=input_ids, attention_mask=attention_mask
        ).pooler_output
        return self.model.text_projection(pooled)

    def encode_images(
        self, images: Sequence[Image.Image], batch_size: int = 64, progress: bool | None = None
    ) -> np.ndarray:
        """Embed images.

        Parameters
        ----------
        images : Sequence[PIL.Image.Image]
            ``n`` images, any mode (converted to RGB by the processor).
        batch_size : int
            Images per forward pass.
        progress : bool, optional
            Show a progress bar; ``None`` shows one on long runs.

        Returns
        -------
        numpy.ndarray
            Shape (n, d), float32, rows L2-normalised.

        Raises
        ------
        TypeError
            An item is not a ``PIL.Image.Image`` (the message names its index).
        """
        items = list(images)
        for i, img in enumerate(items):
            if not isinstance(img, Image.Image):
                raise TypeError(f"images[{i}] is {type(img).__name__}, expected a PIL.Image.Image")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: list[np.ndarray] = []
        with self._eval_mode():
            for chunk in batches(items, batch_size, progress, desc="embedding images"):
                pixels = self.image_processor(images=list(chunk), return_tensors="pt")[
                    "pixel_values"
                ]
                feats = self.image_features(pixels.to(self.device, torch.float32))
                out.append(to_numpy(l2_normalise(feats)))
        return np.concatenate(out, axis=0)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token tensors ``input_ids`` and ``attention_mask``, shape (m, L), on the device.

        Padded to the longest text and truncated to `max_text_length` tokens.
        """
        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        return {k: tokens[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def encode_texts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool | None = None
    ) -> np.ndarray:
        """Embed texts, truncated to `max_text_length` tokens.

        Parameters
        ----------
        texts : Sequence[str]
            ``m`` texts.
        batch_size : int
            Texts per forward pass.
        progress : bool, optional
            Show a progress bar; ``None`` shows one on long runs.

        Returns
        -------
        numpy.ndarray
            Shape (m, d), float32, rows L2-normalised.

        Raises
        ------
        TypeError
            ``texts`` is a single string, or an item is not a ``str`` (the message names its index).
        """
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: list[np.ndarray] = []
        with self._eval_mode():
            for chunk in batches(items, batch_size, progress, desc="embedding texts"):
                feats = self.text_features(**self.tokenize(chunk))
                out.append(to_numpy(l2_normalise(feats)))
        return np.concatenate(out, axis=0)

    # ---------------------------------------------------------------- alignment
    def trainable_parameters(self, scope: str) -> list[torch.nn.Parameter]:
        """Parameters to tune for an alignment ``scope``.

        Parameters
        ----------
        scope : str
            ``"projections"``: the two projection matrices;
            ``"last-blocks"``: the last transformer block and final layer norm of each tower,
            plus the projections;
            ``"all"``: every parameter of the model (``logit_scale`` included).

        Returns
        -------
        list[torch.nn.Parameter]
            Distinct parameters; their ``requires_grad`` flags are left to the caller.

        Raises
        ------
        ValueError
            Unknown ``scope``.
        """
        m = self.model
        projections = [m.visual_projection, m.text_projection]
        if scope == "projections":
            modules: list[torch.nn.Module] = projections
        elif scope == "last-blocks":
            modules = [
                m.vision_model.encoder.layers[-1],
                m.vision_model.post_layernorm,
                m.text_model.encoder.layers[-1],
                m.text_model.final_layer_norm,
                *projections,
            ]
        elif scope == "all":
            return list(m.parameters())
        else:
            raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        seen: set[int] = set()
        params: list[torch.nn.Parameter] = []
        for module in modules:
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    def __repr__(self) -> str:
        return f"HFClipEncoder(id={self.id!r}, dim={self.dim}, device={self.device!r})"
