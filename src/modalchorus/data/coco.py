"""Loader for the official COCO captions annotation format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modalchorus.data._common import (
    file_loader,
    finish_dataset,
    image_reference,
    inspect_image_file,
)
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem

__all__ = ["is_coco_captions", "load_coco_captions"]

#: Id of the single :class:`SkippedItem` that summarises images absent from disk.
MISSING_IMAGES_ID = "<images not on disk>"


def is_coco_captions(document: Any) -> bool:
    """Whether a parsed JSON document looks like a COCO captions file."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("images"), list)
        and isinstance(document.get("annotations"), list)
    )


def load_coco_captions(
    annotations_json: str | Path,
    images_dir: str | Path,
    name: str = "coco",
    *,
    split: str | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load images and captions from an official COCO captions JSON file.

    Only images present in ``images_dir`` are loaded. Images the file lists but
    that are not on disk are expected (people often hold a subset), so they are
    summarised by one :class:`SkippedItem` (id :data:`MISSING_IMAGES_ID`) instead
    of one entry each. Present but corrupt images, and empty captions, are listed
    individually.

    Parameters
    ----------
    annotations_json : str | pathlib.Path
        A ``captions_*.json`` file: ``images`` (``id``, ``file_name``) and
        ``annotations`` (``image_id``, ``caption``).
    images_dir : str | pathlib.Path
        Folder holding the image files named by ``file_name``.
    name : str, default "coco"
        Dataset name.
    split : str | None, default None
        Split name to record on every image (e.g. ``"val2017"``).
    limit : int | None, default None
        Stop once this many usable images are found (the first ones, in the order
        of the ``images`` list): later entries are neither decoded nor reported.

    Returns
    -------
    Dataset
        One record per present image, id = its ``file_name`` below ``images_dir``,
        normalised (one outside it, absolute or through ``..``:
        ``external/<folder digest>/<file name>``, so ids never show the server's
        folders), in the order of the ``images`` list; captions in annotation
        order; no classes.

    Raises
    ------
    FileNotFoundError
        If the annotation file or the images folder does not exist.
    ValueError
        If the file is not valid JSON or not in COCO captions format.
    EmptyDatasetError
        If none of the listed images is present and usable.
    """
    annotations_json = Path(annotations_json)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"COCO images folder not found: {images_dir}")
    document = _read_json(annotations_json)
    if not is_coco_captions(document):
        raise ValueError(
            f"{annotations_json} is not a COCO captions file: expected a JSON object with "
            "'images' and 'annotations' lists"
        )

    skipped: list[SkippedItem] = []
    captions = _captions_by_image(document["annotations"], skipped)
    images: list[ImageRecord] = []
    missing = 0
    listed = document["images"]
    scanned = 0
    for position, entry in enumerate(listed):
        if limit is not None and len(images) >= limit:
            break
        scanned += 1
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(file_name, str) or not file_name:
            skipped.append(SkippedItem(f"images[{position}]", "image entry without a file_name"))
            continue
        image_id, path = image_reference(file_name, images_dir)
        if not path.is_file():
            missing += 1
            continue
        content_hash, reason = inspect_image_file(path)
        if content_hash is None:
            skipped.append(SkippedItem(image_id, reason or "unusable image"))
            continue
        images.append(
            ImageRecord(
                id=image_id,
                content_hash=content_hash,
                load=file_loader(path),
                captions=tuple(captions.get(entry.get("id"), ())),
                split=split,
                source=str(path),
            )
        )
    if missing:
        reason = (
            f"{missing} of {scanned} images listed in {annotations_json} are not in {images_dir}"
        )
        skipped.append(SkippedItem(MISSING_IMAGES_ID, reason))
    dataset = Dataset(name=name, images=images, classes=None, skipped=skipped)
    return finish_dataset(dataset, str(annotations_json))


def _read_json(path: Path) -> Any:
    """Parse a JSON file, turning syntax and encoding errors into ``ValueError``."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid UTF-8 JSON: {exc}") from exc


def _captions_by_image(annotations: list[Any], skipped: list[SkippedItem]) -> dict[Any, list[str]]:
    """Group non-empty captions by ``image_id``; empty ones are reported."""
    grouped: dict[Any, list[str]] = {}
    for position, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            skipped.append(SkippedItem(f"annotations[{position}]", "annotation without image_id"))
            continue
        caption = annotation.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            ident = annotation.get("id", f"annotations[{position}]")
            skipped.append(SkippedItem(f"annotation {ident}", "empty or missing caption"))
            continue
        grouped.setdefault(annotation["image_id"], []).append(caption.strip())
    return grouped
