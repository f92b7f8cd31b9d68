"""Loader for ``captions.json`` lists: ``[{"image": "images/<file>", "captions": [...]}, ...]``.

This is the format of the project's shared COCO-mini and Flickr8k subsets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modalchorus.data._common import (
    class_order,
    file_loader,
    finish_dataset,
    image_reference,
    inspect_image_file,
)
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem

__all__ = ["is_captions_list", "load_captions_json"]

#: Split values that mean "in no official split".
_NO_SPLIT = frozenset({"", "none", "null"})


def is_captions_list(document: Any) -> bool:
    """Whether a parsed JSON document looks like a ``captions.json`` list."""
    return (
        isinstance(document, list)
        and bool(document)
        and all(isinstance(r, dict) and "image" in r for r in document[:10])
    )


def load_captions_json(
    path: str | Path,
    name: str | None = None,
    *,
    split_field: str | None = None,
    label_field: str | None = None,
    images_root: str | Path | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load a ``captions.json`` list of image records with their captions.

    Each record needs ``image`` (a path relative to ``images_root``, or an absolute one)
    and may have ``captions`` (a list of strings); other fields are read only when named.

    Parameters
    ----------
    path : str | pathlib.Path
        The JSON file.
    name : str | None, default None
        Dataset name; defaults to the JSON file's folder name.
    split_field : str | None, default None
        Record field holding the official split (``"flickr8k_split"``,
        ``"coco_split"``); ``"none"`` or empty values mean no split.
    label_field : str | None, default None
        Record field holding a class label.
    images_root : str | pathlib.Path | None, default None
        Folder the ``image`` paths are relative to; defaults to the JSON's folder.
    limit : int | None, default None
        Stop once this many usable images are found (the first ones, in file order):
        later entries are neither decoded nor reported.
        Ignored with ``label_field`` (``classes`` come from all usable images);
        :func:`~modalchorus.data.load_dataset` cuts.

    Returns
    -------
    Dataset
        Ids are the ``image`` paths below ``images_root``, normalised (e.g.
        ``"images/000000397133.jpg"``), in file order; an ``image`` outside it (an
        absolute path or one through ``..``) gets ``external/<folder digest>/<file
        name>`` (ids never show the server's folders). Records without an image
        path, duplicates, missing or corrupt images, and empty captions are listed
        in ``skipped``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not valid JSON or not a list of records.
    EmptyDatasetError
        If no usable image remains.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file not found: {path}")
    try:
        records = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of image records")
    root = Path(images_root) if images_root is not None else path.parent

    images: list[ImageRecord] = []
    skipped: list[SkippedItem] = []
    seen: set[str] = set()
    stop_at = limit if label_field is None else None
    for position, record in enumerate(records):
        if stop_at is not None and len(images) >= stop_at:
            break
        reference = record.get("image") if isinstance(record, dict) else None
        if not isinstance(reference, str) or not reference.strip():
            skipped.append(SkippedItem(f"record {position}", "record without an 'image' path"))
            continue
        image_id, image_path = image_reference(reference, root)
        if image_id in seen:
            skipped.append(SkippedItem(image_id, f"duplicate record {position}"))
            continue
        seen.add(image_id)
        content_hash, reason = inspect_image_file(image_path)
        if content_hash is None:
            skipped.append(SkippedItem(image_id, reason or "unusable image"))
            continue
        images.append(
            ImageRecord(
                id=image_id,
                content_hash=content_hash,
                load=file_loader(image_path),
                label=_optional_text(record.get(label_field)) if label_field else None,
                captions=_captions(record, image_id, skipped),
                split=_split(record.get(split_field)) if split_field else None,
                source=str(image_path),
            )
        )
    classes = class_order(r.label for r in images if r.label is not None) if label_field else None
    dataset = Dataset(
        name=name or path.resolve().parent.name,
        images=images,
        classes=classes or None,
        skipped=skipped,
    )
    return finish_dataset(dataset, str(path))


def _captions(record: dict[str, Any], image_id: str, skipped: list[SkippedItem]) -> tuple[str, ...]:
    """Non-empty captions of a record; empty or non-text ones are reported."""
    raw = record.get("captions", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        skipped.append(SkippedItem(image_id, "'captions' is not a list; captions skipped"))
        return ()
    captions = []
    for number, caption in enumerate(raw):
        if not isinstance(caption, str) or not caption.strip():
            skipped.append(SkippedItem(image_id, f"caption {number} is empty; caption skipped"))
            continue
        captions.append(caption.strip())
    return tuple(captions)


def _optional_text(value: Any) -> str | None:
    """A field value as stripped text, or ``None`` when absent or empty."""
    if value is None:
        return None
    return str(value).strip() or None


def _split(value: Any) -> str | None:
    """A split value, with "none"-like values mapped to ``None``."""
    text = _optional_text(value)
    return None if text is None or text.lower() in _NO_SPLIT else text
