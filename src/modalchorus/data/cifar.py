"""CIFAR-10 loader for the official python pickle format (``cifar-10-batches-py``).

The official CIFAR-10 python release is a set of pickle files, so reading it means
unpickling. That is acceptable here only because these are the dataset's own files
at the paths the user points at, and because the unpickler is restricted: it
resolves nothing but the numpy array globals the official files use, so a file
that tries to run other code fails with :class:`pickle.UnpicklingError`. Only
``batches.meta``, ``test_batch`` and ``data_batch_1`` … ``data_batch_5`` are ever
opened.
"""

from __future__ import annotations

import pickle
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modalchorus.data._common import finish_dataset
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem, sha256_bytes

__all__ = ["CIFAR10_SPLITS", "load_cifar10"]

#: Batch files per split, in sample order.
CIFAR10_SPLITS: dict[str, tuple[str, ...]] = {
    "test": ("test_batch",),
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
}

_BATCH_DIR = "cifar-10-batches-py"
_SIDE = 32
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a CIFAR-10 batch file"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[bytes, Any]:
    """Read one official CIFAR-10 pickle (Python 2 byte-string keys)."""
    with path.open("rb") as f:
        # encoding="bytes" as on the official CIFAR page: keys stay b"data", b"labels".
        content = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch: expected a dict")
    return content


def _batch_dir(root: Path) -> Path:
    """``root`` itself or its ``cifar-10-batches-py`` sub-folder, whichever holds the files."""
    for candidate in (root / _BATCH_DIR, root):
        if (candidate / "batches.meta").is_file():
            return candidate
    raise FileNotFoundError(
        f"CIFAR-10 not found under {root}: expected {root / _BATCH_DIR / 'batches.meta'}"
    )


def _pixels_to_image(pixels: np.ndarray) -> Image.Image:
    """RGB image from a (32, 32, 3) uint8 array."""
    return Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")


def load_cifar10(root: str | Path, split: str = "test", limit: int | None = None) -> Dataset:
    """Load CIFAR-10 from the official python pickle files.

    Parameters
    ----------
    root : str | pathlib.Path
        Folder holding ``cifar-10-batches-py/`` (or that folder itself).
    split : {"test", "train"}, default "test"
        ``"test"`` reads ``test_batch``; ``"train"`` reads ``data_batch_1`` … ``_5``.
    limit : int | None, default None
        Keep only the first ``limit`` samples of the split (in official order).

    Returns
    -------
    Dataset
        Name ``"cifar10"``; ids ``cifar10/<split>/<index:05d>`` (index in the
        split's official order); ``classes`` from ``batches.meta``; each record's
        ``content_hash`` is the sha256 of its raw RGB pixel bytes in row-major
        height x width x channel order, i.e. of ``record.load().tobytes()``.

    Raises
    ------
    FileNotFoundError
        If the batch files are missing.
    ValueError
        If ``split`` or ``limit`` is invalid, or a file is not a CIFAR-10 batch.
    pickle.UnpicklingError
        If a file references anything but numpy arrays.
    """
    if split not in CIFAR10_SPLITS:
        raise ValueError(
            f"unknown CIFAR-10 split {split!r}; expected one of {sorted(CIFAR10_SPLITS)}"
        )
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    batch_dir = _batch_dir(Path(root))
    meta = _unpickle(batch_dir / "batches.meta")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]

    images: list[ImageRecord] = []
    skipped: list[SkippedItem] = []
    index = 0
    for batch_name in CIFAR10_SPLITS[split]:
        if limit is not None and index >= limit:
            break
        path = batch_dir / batch_name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 {split} batch not found: {path}")
        pixels, labels = _read_batch(path)
        count = len(labels) if limit is None else min(len(labels), limit - index)
        for i in range(count):
            image_id = f"cifar10/{split}/{index:05d}"
            label = labels[i]
            index += 1
            if not 0 <= label < len(classes):
                skipped.append(
                    SkippedItem(image_id, f"label {label} outside 0..{len(classes) - 1}")
                )
                continue
            images.append(
                ImageRecord(
                    id=image_id,
                    content_hash=sha256_bytes(pixels[i].tobytes()),
                    load=partial(_pixels_to_image, pixels[i]),
                    label=classes[label],
                    split=split,
                    source=f"{path}#{i}",
                )
            )
    dataset = Dataset(name="cifar10", images=images, classes=classes, skipped=skipped)
    return finish_dataset(dataset, str(batch_dir))


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """Pixels as a C-contiguous (n, 32, 32, 3) uint8 array, and the labels."""
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = [int(v) for v in batch[b"labels"]]
    except KeyError as exc:
        raise ValueError(f"{path} is not a CIFAR-10 batch: missing key {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3 * _SIDE * _SIDE or data.shape[0] != len(labels):
        raise ValueError(
            f"{path}: expected data of shape (n, 3072) matching {len(labels)} labels, "
            f"got {data.shape}"
        )
    # Official rows are channel-major (R plane, G plane, B plane); store HWC.
    hwc = data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(hwc), labels


@lru_cache(maxsize=2)
def _cached_batch(path: str) -> tuple[np.ndarray, list[int]]:
    return _read_batch(Path(path))


def load_cifar_source(source: str) -> Image.Image:
    """The image an item's ``source`` (``"<batch file>#<row>"``) points to, as RGB."""
    path, sep, row = source.rpartition("#")
    if not sep or not row.isdigit():
        raise ValueError(f"not a CIFAR-10 source (expected '<batch file>#<row>'): {source!r}")
    pixels, _ = _cached_batch(path)
    if int(row) >= len(pixels):
        raise ValueError(f"{source!r}: row {row} outside the batch's {len(pixels)} images")
    return _pixels_to_image(pixels[int(row)])
