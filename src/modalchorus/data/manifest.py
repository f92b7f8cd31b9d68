"""Manifest loader: a CSV, JSONL or Parquet table of image paths, captions and labels."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalchorus.data._common import (
    class_order,
    file_loader,
    finish_dataset,
    image_reference,
    inspect_image_file,
)
from modalchorus.data._manifest_formats import ManifestRow, read_manifest_table
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem

__all__ = ["load_manifest"]

logger = logging.getLogger(__name__)


@dataclass
class _ImageGroup:
    """Everything the rows of a manifest say about one image."""

    path: Path
    rows: list[int] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    label: str | None = None
    split: str | None = None


def load_manifest(
    path: str | Path,
    image_column: str = "image",
    caption_column: str | None = None,
    label_column: str | None = None,
    name: str | None = None,
    *,
    split_column: str | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load images listed in a CSV, JSONL or Parquet manifest.

    The format is chosen by suffix (``.csv``, ``.jsonl``/``.ndjson``,
    ``.parquet``/``.pq``). Relative image paths are resolved against the
    manifest's folder. Several rows naming the same image (one caption per row)
    are grouped into one record, in order of first appearance. Text files are
    decoded row by row, so invalid UTF-8 is reported per row instead of failing
    the whole file.

    What is skipped (each listed in ``Dataset.skipped``):

    * a row whose image path or label is empty, missing or not valid UTF-8, or a
      row that cannot be parsed (id ``"row N"``; the reason gives the line);
    * a caption that is empty, whitespace only, or not valid UTF-8 (id
      ``"row N"``): only the caption is dropped, the row's image is kept;
    * an image file that is missing, unreadable or corrupt (id = image id).

    Parameters
    ----------
    path : str | pathlib.Path
        The manifest file.
    image_column : str, default "image"
        Column holding image paths.
    caption_column : str | None, default None
        Column holding a caption (JSONL/Parquet may also hold a list of captions).
    label_column : str | None, default None
        Column holding a class label.
    name : str | None, default None
        Dataset name; defaults to the manifest's file stem.
    split_column : str | None, default None
        Column holding an official split name.
    limit : int | None, default None
        Stop once this many usable images are found (the first ones, in order of first appearance):
        later entries are neither decoded nor reported.
        Ignored with ``label_column`` (every image is then checked: ``classes``
        come from all usable images); :func:`~modalchorus.data.load_dataset` cuts.

    Returns
    -------
    Dataset
        Image ids are the image paths relative to the manifest's folder, normalised
        (``./a/../b.jpg`` becomes ``b.jpg``); an image outside that folder (an
        absolute path or one through ``..``) gets ``external/<folder digest>/<file
        name>`` (ids never show the folders above it). ``classes`` are the sorted
        labels when ``label_column`` is given.

    Raises
    ------
    FileNotFoundError
        If the manifest does not exist.
    ValueError
        If a named column is missing (the message lists the available ones) or
        the file type is not supported.
    EmptyDatasetError
        If no usable image remains.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    roles = {
        "image_column": image_column,
        "caption_column": caption_column,
        "label_column": label_column,
        "split_column": split_column,
    }
    wanted = [column for column in roles.values() if column is not None]
    table = read_manifest_table(path, wanted)
    for role, column in roles.items():
        if column is not None and column not in table.columns:
            available = ", ".join(repr(c) for c in table.columns) or "none"
            what = role.removesuffix("_column")
            raise ValueError(
                f"no column {column!r} (the {what} column) in manifest {path}; available "
                f"columns: {available}"
            )

    skipped = [
        SkippedItem(f"row {row.number}", f"{row.where}: {why}") for row, why in table.unparsable
    ]
    groups: dict[str, _ImageGroup] = {}
    for row in table.rows:
        group = _group_for_row(row, path.parent, image_column, groups, skipped)
        if group is None:
            continue
        label = _optional_field(row, label_column, skipped)
        split = _optional_field(row, split_column, skipped)
        if label is False or split is False:
            continue
        group.rows.append(row.number)
        group.label = _merge(group.label, label, "label", row)
        group.split = _merge(group.split, split, "split", row)
        if caption_column is not None:
            group.captions.extend(_row_captions(row, caption_column, skipped))

    images: list[ImageRecord] = []
    stop_at = limit if label_column is None else None
    for image_id, group in groups.items():
        if stop_at is not None and len(images) >= stop_at:
            break
        if not group.rows:
            continue
        content_hash, reason = inspect_image_file(group.path)
        if content_hash is None:
            rows = ", ".join(str(n) for n in group.rows)
            skipped.append(SkippedItem(image_id, f"{reason} (manifest rows {rows})"))
            continue
        images.append(
            ImageRecord(
                id=image_id,
                content_hash=content_hash,
                load=file_loader(group.path),
                label=group.label,
                captions=tuple(group.captions),
                split=group.split,
                source=str(group.path),
            )
        )
    classes = class_order(r.label for r in images if r.label is not None) if label_column else None
    dataset = Dataset(
        name=name or path.stem, images=images, classes=classes or None, skipped=skipped
    )
    return finish_dataset(dataset, str(path))


def _text(value: Any) -> tuple[str | None, str | None]:
    """Turn a raw cell into ``(text, None)``, ``(None, None)`` if absent, or ``(None, problem)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return None, f"is not valid UTF-8 (bad byte at offset {exc.start})"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return None, f"is not valid UTF-8 (bad byte at character {exc.start})"
        return value, None
    if isinstance(value, bool | int | float):
        return str(value), None
    return None, f"holds a {type(value).__name__}, expected text"


def _group_for_row(
    row: ManifestRow,
    base: Path,
    image_column: str,
    groups: dict[str, _ImageGroup],
    skipped: list[SkippedItem],
) -> _ImageGroup | None:
    """The image group a row belongs to, or ``None`` (and a skip entry) if its path is bad."""
    reference, problem = _text(row.values.get(image_column))
    if problem is None and (reference is None or not reference.strip()):
        problem = "is empty"
    if problem is not None or reference is None:
        reason = f"{row.where}: image column {image_column!r} {problem}; row skipped"
        skipped.append(SkippedItem(f"row {row.number}", reason))
        return None
    image_id, image_path = image_reference(reference.strip(), base)
    if image_id not in groups:
        groups[image_id] = _ImageGroup(path=image_path)
    return groups[image_id]


def _optional_field(
    row: ManifestRow, column: str | None, skipped: list[SkippedItem]
) -> str | None | bool:
    """Value of an optional text column; ``False`` (and a skip entry) if unusable."""
    if column is None:
        return None
    text, problem = _text(row.values.get(column))
    if problem is not None:
        reason = f"{row.where}: column {column!r} {problem}; row skipped"
        skipped.append(SkippedItem(f"row {row.number}", reason))
        return False
    if text is None:
        return None
    return text.strip() or None


def _merge(current: str | None, new: str | None, what: str, row: ManifestRow) -> str | None:
    """Keep the first non-empty value; warn when a later row disagrees."""
    if current is not None and new is not None and new != current:
        logger.warning(
            "%s: %s %r differs from earlier %r; keeping %r", row.where, what, new, current, current
        )
    return current if current is not None else new


def _row_captions(row: ManifestRow, column: str, skipped: list[SkippedItem]) -> list[str]:
    """Usable captions of a row; unusable ones are reported and dropped."""
    value = row.values.get(column)
    cells = value if isinstance(value, list | tuple) else [value]
    captions = []
    for cell in cells:
        text, problem = _text(cell)
        if problem is None and (text is None or not text.strip()):
            problem = "is empty"
        if problem is not None or text is None:
            reason = f"{row.where}: caption column {column!r} {problem}; caption skipped"
            skipped.append(SkippedItem(f"row {row.number}", reason))
            continue
        captions.append(text.strip())
    return captions
