"""The `Encoder` protocol every dual encoder implements, plus shared helpers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

# Show a progress bar once a call is longer than this many items.
PROGRESS_MIN_ITEMS = 512


@runtime_checkable
class Encoder(Protocol):
    """A dual (image, text) encoder mapping both modalities into one space.

    Attributes
    ----------
    id : str
        Identifies the exact weights (name + revision + weight hash). It is the
        embedding-cache key: it must change whenever the weights change.
    dim : int
        Dimension ``d`` of the shared embedding space.
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    id: str
    dim: int
    device: str

    def encode_images(
        self, images: Sequence[Image.Image], batch_size: int = 64, progress: bool | None = None
    ) -> np.ndarray:
        """Embed images. Returns float32 array of shape (n, d), rows L2-normalised.

        ``progress=None`` draws a progress bar for long calls when stderr is a terminal;
        ``True`` / ``False`` force it on or off.
        """
        ...

    def encode_texts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool | None = None
    ) -> np.ndarray:
        """Embed texts. Returns float32 array of shape (m, d), rows L2-normalised.

        ``progress`` as in :meth:`encode_images`.
        """
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, or ``TypeError`` for a bare string or an item that is not one."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return items


def resolve_device(device: str | None) -> str:
    """Return ``"cuda"`` or ``"cpu"``; ``None``/``"auto"`` picks CUDA when present."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'auto'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device


def batches(
    items: Sequence, batch_size: int, progress: bool | None, desc: str
) -> Iterator[Sequence]:
    """Yield consecutive slices of ``items``, with a tqdm bar on long runs on a terminal."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(items)
    if progress is None:  # tqdm's disable=None: drawn on a terminal only, never into logs
        disable: bool | None = None if n >= PROGRESS_MIN_ITEMS else True
    else:
        disable = not progress
    with tqdm(total=n, desc=desc, unit="item", disable=disable, leave=False) as bar:
        for start in range(0, n, batch_size):
            chunk = items[start : start + batch_size]
            yield chunk
            bar.update(len(chunk))


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 normalisation, safe for zero rows. Shape (n, d) -> (n, d)."""
    return torch.nn.functional.normalize(x, dim=-1, eps=1e-12)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """Detach to a contiguous float32 numpy array."""
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
