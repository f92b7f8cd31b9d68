"""Helpers shared by the file-backed loaders (not public API)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from PIL import Image

from modalchorus.data.errors import EmptyDatasetError
from modalchorus.data.images import check_image_bytes, load_image_file
from modalchorus.data.types import Dataset, sha256_bytes

logger = logging.getLogger("modalchorus.data")
#: The "skipped N entries" summary of :func:`finish_dataset` (the CLI, which lists every
#: skipped entry itself, silences it).
skipped_logger = logging.getLogger("modalchorus.data.skipped")


def inspect_image_file(path: Path) -> tuple[str | None, str | None]:
    """Read, hash and fully decode an image file.

    Parameters
    ----------
    path : pathlib.Path
        Image file.

    Returns
    -------
    tuple[str | None, str | None]
        ``(content_hash, None)`` when the file is a usable image, else
        ``(None, reason)``.
    """
    if not path.exists():
        return None, f"file not found: {path}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    reason = check_image_bytes(data, str(path))
    if reason is not None:
        return None, reason
    return sha256_bytes(data), None


def absolute_image_id(path: Path, base: Path) -> str:
    """The id of an image a source names by an absolute path.

    Its path below ``base`` (POSIX style), else ``external/<folder digest>/<file name>``:
    ids are shown to every user of the server, and a path would reveal the server's
    folders. Both paths are normalised first (``.`` and ``..`` parts removed, without
    following links), so ``base/../x.jpg`` is outside ``base``.

    Parameters
    ----------
    path : pathlib.Path
        The image's absolute path, as the source gives it.
    base : pathlib.Path
        The folder the source's relative paths are relative to.

    Returns
    -------
    str
    """
    path, base = _normalised(path), _normalised(base)
    try:
        relative = path.relative_to(base).as_posix()
    except ValueError:
        relative = None
    if relative in (None, "."):  # "." is base itself, not a file below it
        folder = hashlib.sha256(path.parent.as_posix().encode()).hexdigest()[:12]
        return f"external/{folder}/{path.name}"
    return relative


def image_reference(reference: str, base: Path) -> tuple[str, Path]:
    """Id and file of an image a source names, relative to ``base`` or absolutely.

    A relative reference is joined to ``base``; either way the path is normalised
    (``images/../b.jpg`` is ``b.jpg``) and gets its id from :func:`absolute_image_id`:
    a reference that leaves ``base`` (``../other/x.jpg``) is ``external/<folder
    digest>/x.jpg``, never a path naming the folders above ``base``.

    Parameters
    ----------
    reference : str
        The image path as the source writes it.
    base : pathlib.Path
        The folder the source's relative paths are relative to.

    Returns
    -------
    tuple[str, pathlib.Path]
        The image id and its normalised absolute path.
    """
    path = _normalised(Path(base) / reference)  # an absolute reference replaces base
    return absolute_image_id(path, Path(base)), path


def _normalised(path: Path) -> Path:
    """``path`` made absolute, without ``.`` or ``..`` parts (links are not followed)."""
    return Path(os.path.abspath(path))  # abspath also normalises


def file_loader(path: Path) -> partial[Image.Image]:
    """Return a picklable zero-argument callable that decodes ``path``."""
    return partial(load_image_file, path)


def class_order(labels: Iterable[str]) -> list[str]:
    """Distinct labels in natural order: ``"class 2"`` before ``"class 10"``.

    Case-insensitive, with the exact label as the last tie-break, so the order (and with it
    every label's class index) does not depend on the input's order.
    """

    def key(label: str) -> tuple[list[tuple[int, int, str]], str]:
        parts = re.split(r"(\d+)", label)
        natural = [(0, int(p), p) if p.isdecimal() else (1, 0, p.casefold()) for p in parts]
        return natural, label

    return sorted(set(labels), key=key)


def finish_dataset(dataset: Dataset, source: str) -> Dataset:
    """Log what was skipped and refuse a dataset without usable images.

    Parameters
    ----------
    dataset : Dataset
        The dataset a loader built.
    source : str
        The loader's source (path or name), for messages.

    Returns
    -------
    Dataset
        ``dataset`` itself.

    Raises
    ------
    EmptyDatasetError
        If ``dataset`` has no images.
    """
    if dataset.skipped:
        skipped_logger.warning(
            "dataset %r: skipped %d entries while loading %s (see Dataset.skipped); first: %s: %s",
            dataset.name,
            len(dataset.skipped),
            source,
            dataset.skipped[0].id,
            dataset.skipped[0].reason,
        )
    if not dataset.images:
        first = dataset.skipped[0] if dataset.skipped else None
        raise EmptyDatasetError(
            source, len(dataset.skipped), f"{first.id}: {first.reason}" if first else None
        )
    logger.info("dataset %r: %d images from %s", dataset.name, len(dataset.images), source)
    return dataset
