"""What an alignment run produces: the tuned state, its files and the encoder it defines.

An :class:`AlignmentState` is everything needed to rebuild an aligned embedding version
from its base encoder: the tuned tower parameters (LoRA or last blocks; optional) and a
chain of :class:`~modalchorus.align.adapters.ModalityAdapters` applied to the outputs.
It is stored as two files, ``alignment.json`` and ``alignment.safetensors`` (no pickle),
in the workspace with the run and by ``export_run``; ``create_encoder("aligned:<dir>")``
loads such a folder as an :class:`AlignedEncoder`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from modalchorus.align.adapters import ModalityAdapters
from modalchorus.align.towers import inject_lora, load_tower_state, tuning_view
from modalchorus.encoders.base import Encoder, to_numpy

CONFIG_FILE = "alignment.json"
WEIGHTS_FILE = "alignment.safetensors"
FORMAT = "modalchorus-alignment"
FORMAT_VERSION = 1
_TOWER_PREFIX = "tower."
_ADAPTER_PREFIX = "adapter."


@dataclass
class AlignmentState:
    """The tuned state of an aligned embedding version.

    Attributes
    ----------
    base_encoder_id : str
        Id of the encoder the state applies to.
    base_spec : str | None
        Registry name that creates the base encoder (``"pocket"``, ``"hf:<dir>"``), when known.
    dim : int
        Embedding dimension.
    tower : str | None
        ``"lora"``, ``"last-blocks"`` or None (towers untouched).
    lora : dict | None
        LoRA config (``r``, ``lora_alpha``, ``target_modules``) when ``tower == "lora"``.
    tower_tensors : dict[str, torch.Tensor]
        Tuned tower parameters by name in the encoder's tuning root.
    adapters : list[dict[str, torch.Tensor]]
        State dicts of the output adapter chain, applied in order.
    """

    base_encoder_id: str
    base_spec: str | None
    dim: int
    tower: str | None = None
    lora: dict[str, Any] | None = None
    tower_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    adapters: list[dict[str, torch.Tensor]] = field(default_factory=list)

    # -- files ---------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        out = {f"{_TOWER_PREFIX}{k}": v for k, v in self.tower_tensors.items()}
        for i, state in enumerate(self.adapters):
            out.update({f"{_ADAPTER_PREFIX}{i}.{k}": v for k, v in state.items()})
        return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}

    def weights_bytes(self) -> bytes:
        """The safetensors file (deterministic for equal tensors)."""
        tensors = self._tensors()
        return save_tensors(dict(sorted(tensors.items())), metadata={"format": "pt"})

    def digest(self) -> str:
        """First 12 hex digits of sha256 over the weights and the config."""
        return _digest(self.weights_bytes(), self._config())

    def encoder_id(self, scope: str) -> str:
        """Id of the embedding version this state defines."""
        return f"{self.base_encoder_id}~{scope}@{self.digest()}"

    def _config(self) -> dict[str, Any]:
        # Every key is signed by the digest: _check_digest lists them too.
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "base_encoder_id": self.base_encoder_id,
            "base_spec": self.base_spec,
            "dim": self.dim,
            "tower": self.tower,
            "lora": self.lora,
            "n_adapters": len(self.adapters),
        }

    def to_files(self, encoder_id: str) -> dict[str, bytes]:
        """``{"alignment.json": ..., "alignment.safetensors": ...}``."""
        config = {**self._config(), "encoder_id": encoder_id}
        return {
            CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode(),
            WEIGHTS_FILE: self.weights_bytes(),
        }

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> tuple[AlignmentState, str]:
        """Parse files written by :meth:`to_files`; returns the state and its encoder id.

        The encoder id ends with the digest of both files (see :meth:`digest`), so an edited
        or damaged file is refused. Only ``base_spec`` may be set by hand (the base encoder
        it creates must still have the recorded ``base_encoder_id``).

        Raises
        ------
        ValueError
            Missing files or keys, another format, or files that do not match the digest
            in their encoder id.
        """
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if name not in files:
                raise ValueError(f"alignment files lack {name}")
        try:
            config = json.loads(files[CONFIG_FILE])
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{CONFIG_FILE} is not valid JSON: {err}") from err
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise ValueError(f"{CONFIG_FILE} is not a ModalChorus alignment config")
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported alignment format version {config.get('format_version')}")
        for key in ("base_encoder_id", "dim", "n_adapters", "encoder_id"):
            if key not in config:
                raise ValueError(f"{CONFIG_FILE} lacks {key}")
        try:
            tensors = load_tensors(files[WEIGHTS_FILE])
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"{WEIGHTS_FILE} is not a valid safetensors file: {exc}") from None
        _check_digest(config, files[WEIGHTS_FILE])
        tower = {
            k[len(_TOWER_PREFIX) :]: v for k, v in tensors.items() if k.startswith(_TOWER_PREFIX)
        }
        adapters: list[dict[str, torch.Tensor]] = [{} for _ in range(int(config["n_adapters"]))]
        for key, value in tensors.items():
            if key.startswith(_ADAPTER_PREFIX):
                index, _, name = key[len(_ADAPTER_PREFIX) :].partition(".")
                if not index.isdigit() or int(index) >= len(adapters):
                    raise ValueError(f"{WEIGHTS_FILE}: unexpected tensor {key!r}")
                adapters[int(index)][name] = value
        state = cls(
            base_encoder_id=config["base_encoder_id"],
            base_spec=config.get("base_spec"),
            dim=int(config["dim"]),
            tower=config.get("tower"),
            lora=config.get("lora"),
            tower_tensors=tower,
            adapters=adapters,
        )
        return state, config["encoder_id"]

    # -- applying ------------------------------------------------------------------------
    def adapter_modules(self) -> list[ModalityAdapters]:
        """The output adapter chain as frozen modules."""
        return [ModalityAdapters.from_state(state) for state in self.adapters]


def _digest(weights: bytes, config: dict[str, Any]) -> str:
    """First 12 hex digits of sha256 over a weights file and the config's fields."""
    h = hashlib.sha256(weights)
    h.update(json.dumps(config, sort_keys=True).encode())
    return h.hexdigest()[:12]


def _check_digest(config: dict[str, Any], weights: bytes) -> None:
    """Refuse files whose bytes do not give the digest their encoder id ends with.

    The file's own bytes are hashed, as written, not the tensors saved again. ``base_spec``
    is the one field a user may fill in (:func:`load_aligned_encoder` asks for it when a
    run could not tell it): the config is also accepted with ``base_spec`` as a run
    records it.
    """
    encoder_id, base = str(config["encoder_id"]), config["base_encoder_id"]
    fields = ("format", "format_version", "base_encoder_id", "dim", "tower", "lora", "n_adapters")
    signed = {k: config.get(k) for k in fields}
    recorded = encoder_id.rpartition("@")[2]

    def signs(spec: str | None) -> bool:
        return _digest(weights, {**signed, "base_spec": spec}) == recorded

    if not (
        encoder_id.startswith(f"{base}~")
        and (
            signs(config.get("base_spec"))
            or signs(None)
            or (isinstance(base, str) and signs(infer_base_spec(base)))
        )
    ):
        raise ValueError(
            f"{CONFIG_FILE} and {WEIGHTS_FILE} do not match the digest of their version "
            f"{encoder_id!r}: one of them was edited or damaged"
        )


def apply_adapters(
    chain: Sequence[ModalityAdapters], x: torch.Tensor, modality: str
) -> torch.Tensor:
    """Run rows of one modality through an adapter chain. Shape (n, d) -> (n, d)."""
    for module in chain:
        x = module.adapt(x, modality)
    return x


def infer_base_spec(encoder_id: str) -> str | None:
    """Registry name that recreates a base encoder id, when it can be told from the id."""
    if encoder_id.startswith("hf:"):
        return encoder_id.rpartition("@")[0]
    if encoder_id.startswith("pocket@"):
        from modalchorus.encoders.pocket import DEFAULT_WEIGHTS_DIR, weights_digest
        from modalchorus.encoders.pocket import WEIGHTS_FILE as HEADS

        if encoder_id.startswith(f"pocket@{weights_digest(DEFAULT_WEIGHTS_DIR / HEADS)}-"):
            return "pocket"
    return None


class AlignedEncoder:
    """An encoder with an alignment state applied: tuned towers, then output adapters.

    Parameters
    ----------
    state : AlignmentState
    encoder_id : str
        Id of the aligned version (recorded with the state).
    base : Encoder
        The base encoder; it is copied before towers are changed.

    Raises
    ------
    ValueError
        ``base.id`` differs from the state's ``base_encoder_id``.
    """

    def __init__(self, state: AlignmentState, encoder_id: str, base: Encoder) -> None:
        if base.id != state.base_encoder_id:
            raise ValueError(
                f"alignment was tuned on {state.base_encoder_id!r} but the base encoder "
                f"loaded is {base.id!r}"
            )
        if state.tower is not None:
            view = tuning_view(base)
            if state.tower == "lora":
                inject_lora(view, state.lora["r"], state.lora["lora_alpha"])
            load_tower_state(view, state.tower_tensors)
            base = view.encoder
        self.base = base
        self.state = state
        self.id = encoder_id
        self.dim = base.dim
        self.device = base.device
        self._chain = state.adapter_modules()

    def _adapt(self, x: np.ndarray, modality: str) -> np.ndarray:
        with torch.no_grad():
            return to_numpy(apply_adapters(self._chain, torch.from_numpy(x), modality))

    def encode_images(
        self, images: Sequence[Image.Image], batch_size: int = 64, progress: bool | None = None
    ) -> np.ndarray:
        """Embed images. Returns float32 (n, d), rows L2-normalised."""
        return self._adapt(self.base.encode_images(images, batch_size, progress), "image")

    def encode_texts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool | None = None
    ) -> np.ndarray:
        """Embed texts. Returns float32 (m, d), rows L2-normalised."""
        return self._adapt(self.base.encode_texts(texts, batch_size, progress), "text")

    def __repr__(self) -> str:
        return f"AlignedEncoder(id={self.id!r})"


def load_aligned_encoder(spec: str, device: str | None = None) -> AlignedEncoder:
    """``create_encoder("aligned:<dir>")``: load a folder written by ``export_run``."""
    from modalchorus.encoders.registry import create_encoder

    directory = Path(spec).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"aligned encoder folder {str(directory)!r} does not exist")
    files = {}
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"aligned encoder folder {directory} has no {name}")
        files[name] = (directory / name).read_bytes()
    state, encoder_id = AlignmentState.from_files(files)
    if not state.base_spec:
        raise ValueError(
            f"{directory / CONFIG_FILE} does not say how to create the base encoder "
            f"{state.base_encoder_id!r}: set its 'base_spec' (e.g. 'pocket' or 'hf:<dir>')"
        )
    return AlignedEncoder(state, encoder_id, create_encoder(state.base_spec, device=device))
