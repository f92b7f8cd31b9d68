"""Tuning the encoders themselves: the ``lora`` and ``last-blocks`` scopes.

Each supported encoder gets a small *tuning view* (:class:`PocketTuning`,
:class:`HFClipTuning`): which modules LoRA targets, which parameters the last blocks are,
how raw inputs are prepared once (frozen work, done without gradients) and how prepared
inputs become embeddings differentiably.

``pocket`` on CPU: the EfficientNet image tower stays frozen in every scope (a backward
pass through it at 224 px costs seconds per batch), so its outputs are computed once and
the image side is tuned through the pocket heads; the MiniLM text tower gets LoRA on its
attention (``query``, ``value``) or, for ``last-blocks``, its last layer. ``hf:`` CLIP
models get LoRA on ``q_proj``/``v_proj`` of both towers, or their last blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from PIL import Image
from torch import nn

from modalchorus.encoders.base import Encoder, l2_normalise
from modalchorus.encoders.preprocess import images_to_tensor

TOWER_SCOPES = ("lora", "last-blocks")
LORA_PREFIX = "lora_"
PREPARE_BATCH = 64

#: ``progress(done, total)`` while images are prepared.
PrepareProgress = Callable[[int, int], None]


def _batch_starts(n: int, progress: PrepareProgress | None) -> Iterator[int]:
    """Starts of the :data:`PREPARE_BATCH` batches of ``n`` rows, reporting before each."""
    for start in range(0, n, PREPARE_BATCH):
        if progress is not None:
            progress(start, n)
        yield start


class TowerTuning:
    """What an alignment run needs to tune one encoder (a private copy of it).

    Attributes
    ----------
    encoder : Encoder
        The copy being tuned; its ``encode_images``/``encode_texts`` see every change.
    root : torch.nn.Module
        Module LoRA is injected into and whose parameter names key the saved state.
    lora_targets : tuple[str, ...]
        Names (suffixes) of the linear layers LoRA adapts.
    """

    lora_targets: tuple[str, ...] = ()

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.root: nn.Module

    def last_block_parameters(self) -> list[nn.Parameter]:
        """Parameters the ``last-blocks`` scope tunes."""
        raise NotImplementedError

    def image_inputs(
        self, images: Sequence[Image.Image], progress: PrepareProgress | None = None
    ) -> dict[str, torch.Tensor]:
        """Frozen preparation of images; every tensor's first axis has length n.

        ``progress(done, total)`` is called before each batch.
        """
        raise NotImplementedError

    def embed_images(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable embeddings (n, d), unit rows, from prepared image inputs."""
        raise NotImplementedError

    def text_inputs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenised texts, padded to one length; first axis has length m."""
        raise NotImplementedError

    def embed_texts(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable embeddings (m, d), unit rows, from prepared text inputs."""
        raise NotImplementedError


class PocketTuning(TowerTuning):
    """Tuning view of :class:`~modalchorus.encoders.pocket.PocketEncoder`."""

    lora_targets = ("text_residual", "image_residual", "query", "value")

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder)
        self.root = encoder  # PocketEncoder is the nn.Module holding both towers and heads

    def last_block_parameters(self) -> list[nn.Parameter]:
        enc = self.encoder
        return [*enc.heads.parameters(), *enc.text_tower.model.encoder.layer[-1].parameters()]

    @torch.no_grad()
    def image_inputs(
        self, images: Sequence[Image.Image], progress: PrepareProgress | None = None
    ) -> dict[str, torch.Tensor]:
        enc = self.encoder
        features, logits = [], []
        for start in _batch_starts(len(images), progress):
            x = images_to_tensor(images[start : start + PREPARE_BATCH], enc.image_size)
            f, z = enc.image_tower(x.to(enc.device))
            features.append(f)
            logits.append(z)
        return {"features": torch.cat(features), "logits": torch.cat(logits)}

    def embed_images(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder.heads.embed_image(inputs["features"], inputs["logits"])

    def text_inputs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.encoder.text_tower.tokenize(list(texts), self.encoder.device)

    def embed_texts(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder.heads.embed_text(self.encoder.text_tower(**inputs))


class HFClipTuning(TowerTuning):
    """Tuning view of :class:`~modalchorus.encoders.hf_clip.HFClipEncoder`."""

    lora_targets = ("q_proj", "v_proj")

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder)
        self.root = encoder.model

    def last_block_parameters(self) -> list[nn.Parameter]:
        return self.encoder.trainable_parameters("last-blocks")

    @torch.no_grad()
    def image_inputs(
        self, images: Sequence[Image.Image], progress: PrepareProgress | None = None
    ) -> dict[str, torch.Tensor]:
        enc = self.encoder
        pixels = [
            enc.image_processor(images=list(images[i : i + PREPARE_BATCH]), return_tensors="pt")[
                "pixel_values"
            ]
            for i in _batch_starts(len(images), progress)
        ]
        return {"pixel_values": torch.cat(pixels).to(enc.device, torch.float32)}

    def embed_images(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return l2_normalise(self.encoder.image_features(inputs["pixel_values"]))

    def text_inputs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.encoder.tokenize(texts)

    def embed_texts(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return l2_normalise(self.encoder.text_features(**inputs))


def tuning_view(encoder: Encoder) -> TowerTuning:
    """A tuning view of a *private deep copy* of ``encoder`` (the original is untouched).

    Raises
    ------
    ValueError
        An encoder type whose towers this module does not know how to tune.
    """
    from modalchorus.encoders.hf_clip import HFClipEncoder
    from modalchorus.encoders.pocket import PocketEncoder

    if isinstance(encoder, PocketEncoder):
        return PocketTuning(copy.deepcopy(encoder))
    if isinstance(encoder, HFClipEncoder):
        return HFClipTuning(copy.deepcopy(encoder))
    raise ValueError(
        f"encoder {getattr(encoder, 'id', encoder)!r} does not support the lora/last-blocks "
        "scopes; use scope 'adapter'"
    )


def inject_lora(view: TowerTuning, rank: int, alpha: float) -> dict[str, Any]:
    """Add LoRA layers (peft) to the view's root in place; returns the LoRA config."""
    from peft import LoraConfig, inject_adapter_in_model

    config = {"r": int(rank), "lora_alpha": float(alpha), "target_modules": list(view.lora_targets)}
    inject_adapter_in_model(LoraConfig(lora_dropout=0.0, bias="none", **config), view.root)
    return config


def tower_parameters(view: TowerTuning, scope: str) -> dict[str, nn.Parameter]:
    """``{name in root: parameter}`` the scope tunes; every other root parameter is frozen."""
    if scope not in TOWER_SCOPES:
        raise ValueError(f"unknown tower scope {scope!r}; use one of {', '.join(TOWER_SCOPES)}")
    named = dict(view.root.named_parameters())
    if scope == "lora":
        chosen = {n: p for n, p in named.items() if LORA_PREFIX in n}
        if not chosen:
            raise RuntimeError("no LoRA parameters found: call inject_lora first")
    else:
        wanted = {id(p) for p in view.last_block_parameters()}
        chosen = {n: p for n, p in named.items() if id(p) in wanted}
    for p in named.values():
        p.requires_grad_(False)
    for p in chosen.values():
        p.requires_grad_(True)
    return chosen


def load_tower_state(view: TowerTuning, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved tuned parameters into the view's root (names must all exist)."""
    named = dict(view.root.named_parameters())
    unknown = sorted(set(tensors) - set(named))
    if unknown:
        raise ValueError(
            f"saved tower state does not fit this encoder: no parameter {unknown[0]!r}"
        )
    with torch.no_grad():
        for name, value in tensors.items():
            if named[name].shape != value.shape:
                raise ValueError(
                    f"saved tower parameter {name!r} has shape {tuple(value.shape)}, "
                    f"the encoder's has {tuple(named[name].shape)}"
                )
            named[name].copy_(value.to(named[name].device))
