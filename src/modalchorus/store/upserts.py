"""Lance writes that touch only new or changed rows (vectors, assignments, thumbnails)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modalchorus.store.embeddings import EmbeddingBatch, last_occurrence, positions
from modalchorus.store.items import ItemRows
from modalchorus.store.schema import EMBEDDINGS_SCHEMA, cache_schema
from modalchorus.store.tables import ROWID, numpy_to_fixed_size_list, scan, take, take_vectors


def reusable_thumbnails(
    table: Any, stored: pa.Table, rows: ItemRows, updated: np.ndarray
) -> dict[int, bytes]:
    """Stored thumbnails of updated image rows whose content hash and size are unchanged.

    Parameters
    ----------
    table : LanceTable
        Writable items table (at the committed state).
    stored : pa.Table
        Its ``id, content_hash, thumbnail_size, _rowid`` columns.
    rows : ItemRows
        The new rows.
    updated : np.ndarray
        Shape (k,), positions in ``rows`` of updated rows.

    Returns
    -------
    dict[int, bytes]
        ``{position in rows: thumbnail}``.
    """
    new = rows.table.take(pa.array(updated, type=pa.int64()))
    is_image = pc.equal(new["kind"], "image").to_numpy(zero_copy_only=False)
    if not is_image.any():
        return {}
    pos = positions(new["id"].combine_chunks(), stored["id"].combine_chunks())
    same_hash = pc.equal(stored["content_hash"].take(pa.array(pos)), new["content_hash"]).to_numpy(
        zero_copy_only=False
    )
    same_size = pc.fill_null(
        pc.equal(stored["thumbnail_size"].take(pa.array(pos)), new["thumbnail_size"]), False
    ).to_numpy(zero_copy_only=False)
    keep = is_image & same_hash & same_size
    if not keep.any():
        return {}
    row_ids = stored[ROWID].to_numpy()[pos[keep]]
    thumbs = take(table, row_ids, ["thumbnail"])["thumbnail"].to_pylist()
    return {int(i): t for i, t in zip(updated[keep], thumbs, strict=True) if t is not None}


def _upsert(table: Any, key: str, rows: pa.Table, replaces: bool) -> None:
    """Append ``rows``, or merge them on ``key`` when some replace stored rows."""
    if replaces:
        table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(
            rows
        )
    else:
        table.add(rows)


def upsert_vectors(table: Any, batch: EmbeddingBatch) -> int:
    """Write new or changed (content_hash -> vector) cache entries; returns how many."""
    unique = last_occurrence(batch.content_hashes)
    if len(unique) == len(batch.content_hashes):  # no repeated hash: keep the arrays as is
        hashes = pa.array(batch.content_hashes, pa.string())
        vectors = batch.vectors
    else:
        hashes = pa.array([batch.content_hashes[i] for i in unique], pa.string())
        vectors = batch.vectors[unique]
    stored = scan(table, ["content_hash"])
    pos = positions(hashes, stored["content_hash"].combine_chunks())
    found = pos >= 0
    changed = np.zeros(len(hashes), dtype=bool)
    if found.any():
        old = take_vectors(table, stored[ROWID].to_numpy()[pos[found]], batch.dim)
        changed[found] = _rows_differ(old, vectors if found.all() else vectors[found])
    write = ~found | changed
    if write.any():
        if not write.all():
            hashes, vectors = hashes.filter(pa.array(write)), vectors[write]
        rows = pa.Table.from_arrays(
            [hashes, numpy_to_fixed_size_list(vectors)], schema=cache_schema(batch.dim)
        )
        _upsert(table, "content_hash", rows, replaces=bool(changed.any()))
    return int(write.sum())


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise bitwise inequality of two (n, d) float32 arrays, shape (n,) bool."""
    rows = np.dtype((np.void, a.shape[1] * a.itemsize))
    a = np.ascontiguousarray(a).view(rows).ravel()
    b = np.ascontiguousarray(b).view(rows).ravel()
    return a != b


def upsert_assignments(table: Any, batch: EmbeddingBatch) -> int:
    """Write new or changed (item_id -> content_hash) rows; returns how many."""
    ids = pa.array(batch.item_ids, pa.string())
    hashes = pa.array(batch.content_hashes, pa.string())
    stored = scan(table, ["item_id", "content_hash"]).combine_chunks()
    pos = positions(ids, stored["item_id"])
    found = pos >= 0
    changed = np.zeros(len(ids), dtype=bool)
    if found.any():
        old = stored["content_hash"].take(pa.array(pos[found]))
        changed[found] = ~pc.equal(old, hashes.filter(pa.array(found))).to_numpy(
            zero_copy_only=False
        )
    write = ~found | changed
    if write.any():
        mask = pa.array(write)
        rows = pa.Table.from_arrays(
            [ids.filter(mask), hashes.filter(mask)], schema=EMBEDDINGS_SCHEMA
        )
        _upsert(table, "item_id", rows, replaces=bool(changed.any()))
    return int(write.sum())
