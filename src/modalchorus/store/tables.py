"""Version-pinned access to the workspace's Lance tables.

Readers always go through :meth:`LanceTables.pinned` with the version taken from the
head, so they see committed data only. Writers get a table through
:meth:`LanceTables.writable`, which first discards any versions a crashed writer
left behind (versions newer than the head), so a new write always builds on the
committed state.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from modalchorus.store.errors import WorkspaceError

logger = logging.getLogger(__name__)

ROWID = "_rowid"


class _LRU:
    """A tiny thread-safe LRU mapping (versions are immutable, so entries never go stale)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class LanceTables:
    """The LanceDB database under ``<workspace>/lance``, read at pinned versions.

    Parameters
    ----------
    uri : Path
        Directory of the LanceDB database.
    cache_size : int
        How many pinned table handles and how many key columns to keep in memory.
    """

    def __init__(self, uri: Path, cache_size: int = 64) -> None:
        self._uri = Path(uri)
        self._db: Any = None
        self._db_lock = threading.Lock()
        self._handles = _LRU(cache_size)
        self._columns = _LRU(cache_size)
        self._indexes = _LRU(8)

    @property
    def db(self) -> Any:
        """The (lazily opened) LanceDB connection."""
        with self._db_lock:
            if self._db is None:
                self._db = lancedb.connect(str(self._uri))
            return self._db

    def close(self) -> None:
        """Drop cached handles and columns."""
        self._handles.clear()
        self._columns.clear()
        self._indexes.clear()

    # ------------------------------------------------------------------ reading

    def pinned(self, name: str, version: int) -> Any:
        """Read-only handle of table ``name`` at ``version`` (cached).

        Raises
        ------
        WorkspaceError
            The database folder is missing (a damaged workspace); nothing is created.
        """
        key = (name, version)
        handle = self._handles.get(key)
        if handle is None:
            if not self._uri.is_dir():  # lancedb.connect would create it: reads create nothing
                raise WorkspaceError(
                    f"workspace {self._uri.parent} is damaged: its {self._uri.name}/ folder, "
                    f"which holds table {name!r}, is missing"
                )
            handle = self.db.open_table(name, version=version)
            self._handles.put(key, handle)
        return handle

    def scan(self, name: str, version: int, columns: Sequence[str]) -> pa.Table:
        """All rows of ``columns`` at ``version``, plus their row ids in ``_rowid``."""
        return scan(self.pinned(name, version), columns)

    def key_columns(self, name: str, version: int, columns: tuple[str, ...]) -> pa.Table:
        """Like :meth:`scan`, cached per (table, version, columns); for small key columns.

        Returns
        -------
        pa.Table
            n rows: ``columns`` then ``_rowid`` (uint64), each a single chunk.
        """
        key = (name, version, columns)
        hit = self._columns.get(key)
        if hit is None:
            hit = self.scan(name, version, columns).combine_chunks()
            self._columns.put(key, hit)
        return hit

    def lookup(self, name: str, version: int, column: str) -> dict[str, int]:
        """``{value: row_id}`` for a unique string column (cached), for point lookups."""
        key = (name, version, column)
        hit = self._indexes.get(key)
        if hit is None:
            table = self.key_columns(name, version, (column,))
            values = table[column].to_pylist()
            hit = dict(zip(values, table[ROWID].to_pylist(), strict=True))
            self._indexes.put(key, hit)
        return hit

    def take(
        self, name: str, version: int, row_ids: np.ndarray, columns: Sequence[str]
    ) -> pa.Table:
        """Rows by row id at ``version``, in the order of ``row_ids`` (see :func:`take`)."""
        return take(self.pinned(name, version), row_ids, columns)

    def vectors(self, name: str, version: int, row_ids: np.ndarray, dim: int) -> np.ndarray:
        """Vectors of the ``vector`` column by row id.

        Returns
        -------
        np.ndarray
            Shape (m, dim), float32, C-contiguous and writable, row ``i`` for ``row_ids[i]``.
        """
        if len(row_ids) == 0:
            return np.zeros((0, dim), dtype=np.float32)
        return take_vectors(self.pinned(name, version), row_ids, dim)

    # ------------------------------------------------------------------ writing

    def writable(self, name: str, committed: int | None, schema: pa.Schema) -> Any:
        """A handle on the latest version of ``name``, reset to the committed state.

        Must be called while holding the workspace write lock.

        Parameters
        ----------
        name : str
            Table name.
        committed : int | None
            The table's version in the head, or None when the head does not have it.
        schema : pa.Schema
            Schema to create the table with when it is not committed yet.

        Returns
        -------
        LanceTable
            If ``committed`` is None, a fresh empty table (any leftover of an uncommitted
            creation is dropped first). Otherwise the table, restored to ``committed`` if
            a crashed writer left newer, uncommitted versions.
        """
        db = self.db
        if committed is None:
            self._drop(name)
            return db.create_table(name, schema=schema)
        table = db.open_table(name)
        if table.version != committed:
            logger.warning(
                "table %s: discarding uncommitted version %d (restoring committed version %d)",
                name,
                table.version,
                committed,
            )
            table.restore(committed)
        return table

    def _drop(self, name: str) -> None:
        """Remove a table that is not in the head (left by an uncommitted write)."""
        path = self._uri / f"{name}.lance"
        if not path.exists():
            return
        logger.warning("dropping table %s left by an uncommitted write", name)
        try:
            self.db.drop_table(name, ignore_missing=True)
        except Exception:  # noqa: BLE001 - a half-created table may not even open
            logger.debug("drop_table(%s) failed, removing its directory", name, exc_info=True)
        shutil.rmtree(path, ignore_errors=True)


def scan(handle: Any, columns: Sequence[str]) -> pa.Table:
    """All rows of ``columns`` of a table handle, plus their row ids in ``_rowid``.

    Returns
    -------
    pa.Table
        ``len(columns) + 1`` columns, one row per live row of the handle's version.
    """
    return handle.search().select(list(columns)).with_row_id(True).limit(None).to_arrow()


def _fetch(handle: Any, wanted: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """Rows with the sorted unique row ids ``wanted`` (plus ``_rowid``), in any order."""
    if wanted.size > handle.count_rows() // 4:
        return scan(handle, columns)  # a full scan is cheaper than a big take
    return handle.take_row_ids(wanted.tolist()).select(list(columns)).with_row_id().to_arrow()


def take(handle: Any, row_ids: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """Rows of a table handle by row id, in the order of ``row_ids`` (repeats allowed).

    Parameters
    ----------
    handle : LanceTable
        Table handle (pinned or writable).
    row_ids : np.ndarray
        Shape (m,), row ids from :func:`scan` of the same version.
    columns : Sequence[str]
        Columns to return.

    Returns
    -------
    pa.Table
        ``m`` rows, row ``i`` being the row with id ``row_ids[i]``.
    """
    row_ids = np.asarray(row_ids, dtype=np.uint64)
    wanted = np.unique(row_ids)
    if wanted.size == 0:
        return handle.take_row_ids([]).select(list(columns)).to_arrow().select(list(columns))
    got = _fetch(handle, wanted, columns)
    positions = align(got[ROWID].to_numpy(), row_ids)
    return got.select(list(columns)).take(pa.array(positions))


def take_vectors(handle: Any, row_ids: np.ndarray, dim: int) -> np.ndarray:
    """The ``vector`` column of a table handle by row id.

    Parameters
    ----------
    handle : LanceTable
        Table handle with a ``vector: fixed_size_list<float32, dim>`` column.
    row_ids : np.ndarray
        Shape (m,), row ids from :func:`scan` of the same version (repeats allowed).
    dim : int
        Vector dimension ``d``.

    Returns
    -------
    np.ndarray
        Shape (m, dim), float32, C-contiguous and writable, row ``i`` for ``row_ids[i]``.
    """
    row_ids = np.asarray(row_ids, dtype=np.uint64)
    wanted = np.unique(row_ids)
    if wanted.size == 0:
        return np.zeros((0, dim), dtype=np.float32)
    got = _fetch(handle, wanted, ["vector"])
    positions = align(got[ROWID].to_numpy(), row_ids)
    vectors = fixed_size_list_to_numpy(got["vector"], dim, copy=False)
    return vectors[positions]  # fancy indexing: a fresh, writable array


def align(have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Positions in ``have`` of each value of ``want``.

    Parameters
    ----------
    have : np.ndarray
        Shape (n,), unique values in any order.
    want : np.ndarray
        Shape (m,), values that all occur in ``have`` (repeats allowed).

    Returns
    -------
    np.ndarray
        Shape (m,), int64, with ``have[result] == want``.
    """
    order = np.argsort(have, kind="stable")
    sorted_have = have[order]
    idx = np.searchsorted(sorted_have, want)
    idx = np.clip(idx, 0, max(len(have) - 1, 0))
    if len(want) and (len(have) == 0 or not np.array_equal(sorted_have[idx], want)):
        raise RuntimeError("internal error: requested rows are missing from the table version")
    return order[idx].astype(np.int64)


def fixed_size_list_to_numpy(
    column: pa.ChunkedArray | pa.Array, dim: int, copy: bool = True
) -> np.ndarray:
    """A ``fixed_size_list<float32, dim>`` column as an (n, dim) float32 array.

    With ``copy=False`` the result may be a read-only view of Arrow memory.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    out = np.array(flat, dtype=np.float32, copy=True) if copy else flat
    return out.reshape(-1, dim)


def numpy_to_fixed_size_list(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, d) float32 array as a ``fixed_size_list<float32, d>`` Arrow array (no copy)."""
    n, dim = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(n * dim))
    return pa.FixedSizeListArray.from_arrays(flat, dim)
