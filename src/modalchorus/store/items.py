"""Turning a :class:`~modalchorus.data.types.Dataset` into item rows.

Item ids
--------
Image items are namespaced by dataset: ``f"{dataset.name}/{record.id}"``, unless the
record id already starts with ``f"{dataset.name}/"`` (then it is kept as is, so loaders
that already namespace their ids are not double-prefixed). Ids are therefore unique
across datasets. Caption ``j`` of an image item ``i`` is the text item ``f"{i}#{j}"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modalchorus.data.types import Dataset, ImageRecord
from modalchorus.store.schema import ITEMS_SCHEMA
from modalchorus.store.thumbnails import make_thumbnail


def image_item_id(dataset_name: str, record_id: str) -> str:
    """Workspace id of an image record: the record id prefixed by the dataset name."""
    prefix = f"{dataset_name}/"
    return record_id if record_id.startswith(prefix) else prefix + record_id


def text_item_id(image_id: str, caption_index: int) -> str:
    """Workspace id of caption ``caption_index`` of image item ``image_id``."""
    return f"{image_id}#{caption_index}"


#: How many unknown item ids :func:`unknown_items_message` names.
NAMED_UNKNOWN_IDS = 3


def dataset_of_id(item_id: str, datasets: Sequence[str]) -> str | None:
    """The dataset whose name prefixes ``item_id`` (``f"{name}/..."``; the longest such
    name), or None: every item id starts with its dataset's name and ``/``."""
    names = [name for name in datasets if item_id.startswith(f"{name}/")]
    return max(names, key=len) if names else None


def unknown_reason(item_id: str, datasets: Sequence[str]) -> str:
    """Why ``item_id``, not an item of the workspace, is none: its dataset has no such
    item, there is no dataset of that name, or it is not shaped like an item id."""
    dataset = dataset_of_id(item_id, datasets)
    if dataset is not None:
        return f"dataset {dataset!r} has no item with this id"
    if "/" in item_id.strip("/"):
        return f"the workspace has no dataset {item_id.split('/', 1)[0]!r}"
    return "not an item id: item ids are '<dataset>/<id in the dataset>'"


def unknown_items_message(missing: Sequence[str], n_asked: int, datasets: Sequence[str]) -> str:
    """The message of an ``UnknownItemError``: the first few unknown ids, each group of
    them followed by why they are unknown (see :func:`unknown_reason`).

    Parameters
    ----------
    missing : Sequence[str]
        The unknown ids, at least one, in the order they were asked for.
    n_asked : int
        How many ids were asked for in all.
    datasets : Sequence[str]
        The workspace's dataset names.

    Returns
    -------
    str
        ``"unknown item id 'x' (why)"`` for one unknown id; else ``"k of n item ids are
        unknown: 'a', 'b' (why); 'c' (why); and 5 more"``, naming at most
        :data:`NAMED_UNKNOWN_IDS` ids.
    """
    if len(missing) == 1:
        return f"unknown item id {missing[0]!r} ({unknown_reason(missing[0], datasets)})"
    groups: dict[str, list[str]] = {}
    for item_id in missing[:NAMED_UNKNOWN_IDS]:
        groups.setdefault(unknown_reason(item_id, datasets), []).append(item_id)
    named = "; ".join(
        f"{', '.join(repr(i) for i in ids)} ({reason})" for reason, ids in groups.items()
    )
    more = len(missing) - NAMED_UNKNOWN_IDS
    tail = f"; and {more} more" if more > 0 else ""
    return f"{len(missing)} of {n_asked} item ids are unknown: {named}{tail}"


def text_hash(text: str) -> str:
    """Content hash of a text item: sha256 hex of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(fields: list[object]) -> str:
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass
class ItemRows:
    """Rows of one dataset, without thumbnails yet.

    Attributes
    ----------
    table : pa.Table
        ``ITEMS_SCHEMA`` without the ``thumbnail`` column; n rows, images and texts.
    records : list[ImageRecord | None]
        Length n: the record to thumbnail for image rows, None for text rows.
    """

    table: pa.Table
    records: list[ImageRecord | None]

    def with_thumbnails(self, index: np.ndarray, reuse: Mapping[int, bytes]) -> pa.Table:
        """The rows at ``index``, with thumbnails for their images.

        Parameters
        ----------
        index : np.ndarray
            Shape (k,), int: positions of the rows to return.
        reuse : Mapping[int, bytes]
            Stored thumbnails still valid for some positions (same content hash and
            size); the other images are decoded and thumbnailed here.

        Returns
        -------
        pa.Table
            ``ITEMS_SCHEMA`` rows.

        Raises
        ------
        ValueError
            An image failed to load; names the item and its source.
        """
        sizes = self.table["thumbnail_size"]
        thumbs: list[bytes | None] = []
        for i in index.tolist():
            record = self.records[i]
            if record is None:
                thumbs.append(None)
            elif i in reuse:
                thumbs.append(reuse[i])
            else:
                thumbs.append(_thumbnail(record, sizes[i].as_py()))
        rows = self.table.take(pa.array(index, type=pa.int64()))
        rows = rows.append_column(ITEMS_SCHEMA.field("thumbnail"), pa.array(thumbs, pa.binary()))
        return rows.cast(ITEMS_SCHEMA)


def _thumbnail(record: ImageRecord, size: int) -> bytes:
    try:
        return make_thumbnail(record.load(), size)
    except Exception as exc:
        raise ValueError(
            f"could not load image {record.id!r} ({record.source or 'no source'}): {exc}"
        ) from exc


def build_item_rows(dataset: Dataset, thumbnail_size: int) -> ItemRows:
    """Item rows (images, then their captions) for every record of ``dataset``.

    Parameters
    ----------
    dataset : Dataset
        The loaded dataset.
    thumbnail_size : int
        Part of each image row's fingerprint, so a new size rewrites the thumbnails.

    Returns
    -------
    ItemRows
        ``n_images + n_captions`` rows; nothing is decoded yet.

    Raises
    ------
    ValueError
        Empty dataset name, or two records mapping to the same item id.
    """
    name = dataset.name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    cols: dict[str, list] = {f.name: [] for f in ITEMS_SCHEMA if f.name != "thumbnail"}
    records: list[ImageRecord | None] = []

    def add(row: dict[str, object], record: ImageRecord | None) -> None:
        fields = [row[k] for k in cols if k != "fingerprint"]
        row["fingerprint"] = _fingerprint(fields)
        for key, values in cols.items():
            values.append(row[key])
        records.append(record)

    seen: set[str] = set()
    for ordinal, record in enumerate(dataset.images):
        item_id = image_item_id(name, record.id)
        if item_id in seen:
            raise ValueError(f"dataset {name!r}: duplicate image id {record.id!r}")
        seen.add(item_id)
        base = {
            "dataset": name,
            "label": record.label,
            "split": record.split,
            "source": record.source,
            "ordinal": ordinal,
        }
        image_row = dict(base, id=item_id, kind="image", text=None, image_id=None)
        image_row.update(content_hash=record.content_hash, caption_index=None)
        add(dict(image_row, thumbnail_size=thumbnail_size), record)
        for j, caption in enumerate(record.captions):
            text_row = dict(base, id=text_item_id(item_id, j), kind="text", text=caption)
            text_row.update(image_id=item_id, content_hash=text_hash(caption), caption_index=j)
            add(dict(text_row, thumbnail_size=None), None)
    for ordinal, text in enumerate(dataset.texts):
        item_id = f"{name}/text/{text.id}"
        if item_id in seen:
            raise ValueError(f"dataset {name!r}: duplicate text id {text.id!r}")
        seen.add(item_id)
        row = {
            "dataset": name,
            "label": text.label,
            "split": None,
            "source": "",
            "ordinal": len(dataset.images) + ordinal,
            "id": item_id,
            "kind": "text",
            "text": text.text,
            "image_id": None,
            "content_hash": text_hash(text.text),
            "caption_index": None,
            "thumbnail_size": None,
        }
        add(row, None)
    schema = pa.schema([f for f in ITEMS_SCHEMA if f.name != "thumbnail"])
    table = pa.Table.from_pydict(cols, schema=schema)
    return ItemRows(table=table, records=records)


def diff_rows(
    existing_ids: pa.Array, existing_fingerprints: pa.Array, rows: pa.Table
) -> tuple[np.ndarray, np.ndarray]:
    """Classify new rows against what is stored.

    Parameters
    ----------
    existing_ids, existing_fingerprints : pa.Array
        Shape (m,): the stored items' ids and fingerprints.
    rows : pa.Table
        n new rows with ``id`` and ``fingerprint`` columns.

    Returns
    -------
    added : np.ndarray
        Shape (n,), bool: id not stored.
    updated : np.ndarray
        Shape (n,), bool: id stored with a different fingerprint.
        Rows neither added nor updated are unchanged.
    """
    pos = pc.index_in(rows["id"], value_set=existing_ids)
    added = pos.is_null().to_numpy(zero_copy_only=False)
    stored_fp = existing_fingerprints.take(pos.combine_chunks())
    same = pc.fill_null(pc.equal(stored_fp, rows["fingerprint"].combine_chunks()), False)
    updated = ~added & ~same.to_numpy(zero_copy_only=False)
    return added, updated
