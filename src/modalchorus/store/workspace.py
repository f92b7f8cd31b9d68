"""The workspace: a directory holding the user's work (items, embeddings, projections, sets).

Bulk data (items with thumbnails, embedding vectors, projection coordinates and model
files) lives in Lance tables; small transactional state (metadata, sets) and the commit
pointer (the *head*) live in SQLite. Every public
write is all-or-nothing across both (see :mod:`modalchorus.store.transaction`), and
every read sees one committed state (see :mod:`modalchorus.store.head`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modalchorus.data.types import Dataset, SkippedItem
from modalchorus.store import alignment_runs as runs
from modalchorus.store import projections as proj
from modalchorus.store import sets as set_rows
from modalchorus.store import transaction, upserts
from modalchorus.store.catalog import (
    check_catalog,
    initialise,
    read_transaction,
    upgrade,
    utc_now,
)
from modalchorus.store.embeddings import (
    EmbeddingBatch,
    check_dim,
    check_strings,
    positions,
    validate_embeddings,
)
from modalchorus.store.errors import (
    DuplicateIntentError,
    ItemInUseError,
    NotAWorkspaceError,
    SetInUseError,
    UnknownDatasetError,
    UnknownEncoderError,
    UnknownItemError,
    UnknownProjectionError,
    WorkspaceError,
    WorkspaceExistsError,
)
from modalchorus.store.head import read_head
from modalchorus.store.items import (
    ItemRows,
    build_item_rows,
    diff_rows,
    unknown_items_message,
)
from modalchorus.store.records import (
    AddResult,
    DatasetInfo,
    IntentInfo,
    ProjectionInfo,
    PutResult,
    RunInfo,
    SetInfo,
)
from modalchorus.store.schema import (
    CATALOG_FILE,
    EMBEDDINGS_SCHEMA,
    ITEM_PUBLIC_COLUMNS,
    ITEMS_SCHEMA,
    ITEMS_TABLE,
    KINDS,
    LANCE_DIR,
    PROJECTION_COORDS_SCHEMA,
    PROJECTION_COORDS_TABLE,
    PROJECTION_FILES_SCHEMA,
    PROJECTION_FILES_TABLE,
    cache_schema,
    cache_table,
    embeddings_table,
    encoder_table_key,
    projection_key,
)
from modalchorus.store.tables import (
    ROWID,
    LanceTables,
    scan,
)
from modalchorus.store.thumbnails import DEFAULT_THUMBNAIL_SIZE, check_thumbnail_size

logger = logging.getLogger(__name__)

#: Default seconds a write waits for another process's write to finish.
DEFAULT_LOCK_TIMEOUT_S = 600.0

#: ``(encoder_id, item_ids, content_hashes, vectors)``, as :meth:`Workspace.put_embeddings`
#: takes them.
Embeddings = tuple[str, Sequence[str], Sequence[str], np.ndarray]


class _Encoder(NamedTuple):
    encoder_id: str
    key: str
    dim: int

    @property
    def cache(self) -> str:
        return cache_table(self.key)

    @property
    def embeddings(self) -> str:
        return embeddings_table(self.key)


class Workspace:
    """A ModalChorus workspace on disk. Build one with :meth:`create` or :meth:`open`.

    A ``Workspace`` object holds no open files between calls (each call opens and
    closes its own SQLite connection; Lance handles are cached read-only views of
    immutable versions), so it is safe to share between threads, and any number of
    processes may open the same workspace. Writes from all of them are serialised.

    Parameters
    ----------
    path : Path
        The workspace directory (already validated).
    lock_timeout : float
        Seconds a write waits for another writer before ``WorkspaceLockedError``.
    """

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self._path = Path(path).resolve()
        self._catalog = self._path / CATALOG_FILE
        self._tables = LanceTables(self._path / LANCE_DIR)
        self.lock_timeout = lock_timeout

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> Workspace:
        """Create a new, empty workspace at ``path`` (parent directories included).

        Raises
        ------
        WorkspaceExistsError
            A workspace is already there.
        FileExistsError
            ``path`` is a file, or a non-empty directory that is not a workspace.
        """
        path = Path(path).expanduser()
        catalog = path / CATALOG_FILE
        if catalog.exists():
            raise WorkspaceExistsError(f"a workspace already exists at {path}")
        if path.exists():
            if not path.is_dir():
                raise FileExistsError(f"cannot create a workspace at {path}: it is a file")
            foreign = sorted(p.name for p in path.iterdir() if not _is_own_entry(p.name))
            if foreign:
                raise FileExistsError(
                    f"cannot create a workspace at {path}: the directory is not empty "
                    f"(contains {foreign[0]!r}); use an empty or new directory"
                )
        path.mkdir(parents=True, exist_ok=True)
        (path / LANCE_DIR).mkdir(exist_ok=True)
        tmp = path / f".{CATALOG_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            initialise(tmp)
            _publish(tmp, catalog)
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("created workspace %s", path)
        return cls(path, lock_timeout=lock_timeout)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> Workspace:
        """Open an existing workspace. Never creates anything at ``path``.

        A workspace written before the projection and set tables existed gets them
        (created under the write lock, see :func:`~modalchorus.store.catalog.upgrade`).

        Raises
        ------
        NotAWorkspaceError
            ``path`` does not exist, is not a directory, or holds no workspace catalog.
        IncompatibleWorkspaceError
            The workspace was written by a newer schema version.
        WorkspaceError
            The folder of its tables is missing (a damaged workspace).
        WorkspaceLockedError
            Tables had to be created and another writer held the lock too long.
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise NotAWorkspaceError(f"{path} is not a workspace: it does not exist")
        if not path.is_dir():
            raise NotAWorkspaceError(f"{path} is not a workspace: it is not a directory")
        catalog = path / CATALOG_FILE
        if not catalog.is_file():
            raise NotAWorkspaceError(
                f"{path} is not a workspace: it has no {CATALOG_FILE} "
                "(`modalchorus embed SOURCE --workspace DIR` or Workspace.create makes one)"
            )
        check_catalog(catalog, path)
        upgrade(catalog, lock_timeout)
        if not (path / LANCE_DIR).is_dir():
            with read_transaction(catalog) as conn:
                tables = read_head(conn)
            if tables:  # without tables (a new workspace) the first write makes the folder
                raise WorkspaceError(
                    f"workspace {path} is damaged: its {LANCE_DIR}/ folder, which holds "
                    f"{len(tables)} tables, is missing"
                )
        return cls(path, lock_timeout=lock_timeout)

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> Workspace:
        """Open the workspace at ``path``, creating it when nothing is there yet."""
        path = Path(path).expanduser()
        if (path / CATALOG_FILE).exists():
            return cls.open(path, lock_timeout=lock_timeout)
        try:
            return cls.create(path, lock_timeout=lock_timeout)
        except WorkspaceExistsError:  # another process created it meanwhile
            return cls.open(path, lock_timeout=lock_timeout)

    @property
    def path(self) -> Path:
        """The workspace directory (absolute)."""
        return self._path

    def close(self) -> None:
        """Release cached Lance handles. The object stays usable (caches refill)."""
        self._tables.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self._path)!r})"

    # ------------------------------------------------------------ internals

    @contextmanager
    def _snapshot(self) -> Iterator[tuple[sqlite3.Connection, dict[str, int]]]:
        """One committed state: a catalog read transaction and its head."""
        with read_transaction(self._catalog) as conn:
            yield conn, read_head(conn)

    def _write(self, op: str) -> Any:
        return transaction.write(self._catalog, self._tables, op, self.lock_timeout)

    @staticmethod
    def _encoder(conn: sqlite3.Connection, encoder_id: str) -> _Encoder | None:
        row = conn.execute(
            "SELECT encoder_id, table_key, dim FROM encoders WHERE encoder_id = ?", (encoder_id,)
        ).fetchone()
        return None if row is None else _Encoder(row[0], row[1], int(row[2]))

    @staticmethod
    def _dataset_order(conn: sqlite3.Connection) -> list[str]:
        return [name for (name,) in conn.execute("SELECT name FROM datasets ORDER BY rowid")]

    def _require_items(
        self, conn: sqlite3.Connection, head: dict[str, int], item_ids: list[str]
    ) -> None:
        """Raise ``UnknownItemError`` naming the first few ids that are not committed items
        and why (:func:`~modalchorus.store.items.unknown_items_message`).

        Parameters
        ----------
        conn : sqlite3.Connection
            The catalog, in the same snapshot or write transaction as ``head``.
        head : dict[str, int]
            The committed head (of the snapshot or write transaction).
        item_ids : list[str]
            Length n, the ids to check.
        """
        version = head.get(ITEMS_TABLE)
        if version is None:
            pos = np.full(len(item_ids), -1, dtype=np.int64)
        else:
            known = self._tables.key_columns(ITEMS_TABLE, version, ("id",))["id"]
            pos = positions(item_ids, known)
        missing = np.flatnonzero(pos < 0)
        if missing.size:
            unknown = [item_ids[i] for i in missing.tolist()]
            datasets = self._dataset_order(conn)
            raise UnknownItemError(unknown_items_message(unknown, len(item_ids), datasets))

    def _item_rows(
        self,
        conn: sqlite3.Connection,
        head: dict[str, int],
        columns: Sequence[str],
        kind: str | None,
        dataset: str | None,
    ) -> pa.Table:
        """Committed items (filtered), in dataset order, images then texts, by position."""
        version = head.get(ITEMS_TABLE)
        sort_cols = ["dataset", "kind", "ordinal", "caption_index"]
        needed = list(dict.fromkeys([*columns, *sort_cols]))
        if version is None:
            return ITEMS_SCHEMA.empty_table().select(list(columns))
        table = self._tables.scan(ITEMS_TABLE, version, needed)
        if kind is not None:
            table = table.filter(pc.equal(table["kind"], kind))
        if dataset is not None:
            table = table.filter(pc.equal(table["dataset"], dataset))
        order = pa.array(self._dataset_order(conn), pa.string())
        table = table.append_column("_ds", pc.index_in(table["dataset"], value_set=order))
        table = table.append_column(
            "_kind", pc.index_in(table["kind"], value_set=pa.array(KINDS, pa.string()))
        )
        keys = ["_ds", "_kind", "ordinal", "caption_index"]
        table = table.sort_by([(k, "ascending") for k in keys])
        return table.select(list(columns))

    # ------------------------------------------------------------ items

    def add_dataset(
        self,
        dataset: Dataset,
        thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE,
        *,
        embeddings: Embeddings | None = None,
    ) -> AddResult:
        """Store a dataset's images and caption texts (upsert by item id), atomically.

        Image item ids are ``f"{dataset.name}/{record.id}"`` (kept as is when the record
        id already starts with that prefix); caption ``j`` of image item ``i`` is the
        text item ``f"{i}#{j}"`` with ``content_hash = sha256(text.encode())``. Items of
        the dataset that are absent from ``dataset`` are kept (use
        :meth:`remove_dataset` first to replace a dataset). Text items carry their
        image's dataset, label and split. Only new or changed items are written, and
        only images whose content or thumbnail size changed are decoded. A call that
        changes nothing writes nothing (no commit).

        Parameters
        ----------
        dataset : Dataset
            The loaded dataset; its classes and skipped entries are stored too.
        thumbnail_size : int
            Longest side of the stored JPEG thumbnails, in pixels (8-1024).
        embeddings : tuple, optional
            ``(encoder_id, item_ids, content_hashes, vectors)`` to store as
            :meth:`put_embeddings` does, in the same atomic write: the items never exist
            without these vectors (an interrupted ``embed`` leaves neither).

        Returns
        -------
        AddResult
            Counts of added / updated / unchanged items.

        Raises
        ------
        ValueError
            Bad dataset name or thumbnail size, duplicate record ids, an image that
            fails to load, or bad ``embeddings`` (see :meth:`put_embeddings`). Nothing is
            written.
        """
        size = check_thumbnail_size(thumbnail_size)
        rows = build_item_rows(dataset, size)
        batch = None if embeddings is None else validate_embeddings(*embeddings)
        name = dataset.name
        classes = None if dataset.classes is None else json.dumps(list(dataset.classes))
        skipped = json.dumps([{"id": s.id, "reason": s.reason} for s in dataset.skipped])
        added, updated, n_images, n_texts = self._add_dataset(name, rows, (classes, skipped), batch)
        result = AddResult(
            dataset=name,
            added=int(added.sum()),
            updated=int(updated.sum()),
            unchanged=int(len(added) - added.sum() - updated.sum()),
            n_images=n_images,
            n_texts=n_texts,
            n_skipped=len(dataset.skipped),
        )
        logger.info("add_dataset %s: %s", name, result)
        return result

    def _add_dataset(
        self,
        name: str,
        rows: ItemRows,
        meta: tuple[str | None, str],
        batch: EmbeddingBatch | None,
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """The write of :meth:`add_dataset`; ``meta`` is the dataset's (classes, skipped).

        Returns (added, updated, n_images, n_texts). A write that would change nothing
        is marked unchanged: it rolls back and logs no commit.
        """
        classes, skipped = meta
        with self._write(f"add_dataset {name}") as tx:
            table = tx.table(ITEMS_TABLE, ITEMS_SCHEMA)
            stored = scan(table, ["id", "fingerprint", "content_hash", "thumbnail_size"])
            added, updated = diff_rows(stored["id"], stored["fingerprint"], rows.table)
            write_idx = np.flatnonzero(added | updated)
            if write_idx.size:
                reuse = upserts.reusable_thumbnails(table, stored, rows, np.flatnonzero(updated))
                new_rows = rows.with_thumbnails(write_idx, reuse)
                if updated.any():
                    (
                        table.merge_insert("id")
                        .when_matched_update_all()
                        .when_not_matched_insert_all()
                        .execute(new_rows)
                    )
                else:
                    table.add(new_rows)
            n_images, n_texts = _count_kinds(scan(table, ["dataset", "kind"]), name)
            if batch is not None and batch.item_ids:
                self._put_embeddings(tx, batch)
            elif batch is not None:  # no vectors, but a wrong dimension is still an error
                encoder = self._encoder(tx.conn, batch.encoder_id)
                check_dim(batch.encoder_id, None if encoder is None else encoder.dim, batch.dim)
            stored = tx.conn.execute(
                "SELECT classes, skipped, n_images, n_texts FROM datasets WHERE name = ?", (name,)
            ).fetchone()
            if not tx.staged_versions() and stored == (classes, skipped, n_images, n_texts):
                tx.mark_unchanged()  # the same rows and metadata again: no commit
                return added, updated, n_images, n_texts
            now = utc_now()
            tx.conn.execute(
                "INSERT INTO datasets(name, classes, skipped, n_images, n_texts, added_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "classes = excluded.classes, skipped = excluded.skipped, "
                "n_images = excluded.n_images, n_texts = excluded.n_texts, "
                "updated_at = excluded.updated_at",
                (name, classes, skipped, n_images, n_texts, now, now),
            )
        return added, updated, n_images, n_texts

    def remove_dataset(self, name: str) -> int:
        """Delete a dataset's items, their set memberships and the dataset's metadata,
        atomically.

        Embeddings and cached vectors are kept: re-adding the same data later does not
        re-encode it.

        Returns
        -------
        int
            Number of items removed.

        Raises
        ------
        UnknownDatasetError
            The workspace has no dataset ``name``.
        ItemInUseError
            A stored intent names one of its items, or a set holds only its items.
            Nothing is written.
        """
        with self._write(f"remove_dataset {name}") as tx:
            if tx.conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone() is None:
                raise UnknownDatasetError(f"workspace has no dataset {name!r}")
            table = tx.table(ITEMS_TABLE, ITEMS_SCHEMA)
            stored = scan(table, ["id", "dataset"])
            ids = stored["id"].filter(pc.equal(stored["dataset"], name)).to_pylist()
            removed = len(ids)
            if removed:
                _release_items(tx.conn, set(ids), f"dataset {name!r}")
                table.delete(f"dataset = {_sql_literal(name)}")
            tx.conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
        logger.info("remove_dataset %s: %d items removed", name, removed)
        return int(removed)

    def remove_items(self, item_ids: Sequence[str]) -> list[str]:
        """Delete items (and the captions of deleted images) and their set memberships,
        atomically.

        Embeddings and cached vectors are kept, as by :meth:`remove_dataset`; projections
        keep their coordinates but views no longer list the items.

        Parameters
        ----------
        item_ids : Sequence[str]
            At least one id of the workspace (repeats dropped).

        Returns
        -------
        list[str]
            Every removed id: ``item_ids`` in order, then captions of removed images.

        Raises
        ------
        UnknownItemError
            Some ids are not items of the workspace.
        ItemInUseError
            A stored intent names one of the items, or a set would be left empty.
            Nothing is written.
        """
        ids = list(dict.fromkeys(check_strings("item_ids", item_ids)))
        if not ids:
            raise ValueError("item_ids is empty: name at least one item to remove")
        with self._write(f"remove_items n={len(ids)}") as tx:
            self._require_items(tx.conn, tx.head, ids)
            table = tx.table(ITEMS_TABLE, ITEMS_SCHEMA)
            stored = scan(table, ["id", "image_id", "dataset"])
            asked = set(ids)
            captions_of_removed = pc.fill_null(
                pc.is_in(stored["image_id"], value_set=pa.array(ids, pa.string())), False
            )
            removed = ids + [
                i for i in stored["id"].filter(captions_of_removed).to_pylist() if i not in asked
            ]
            _release_items(tx.conn, set(removed), "these items")
            table.delete(f"id IN ({', '.join(_sql_literal(i) for i in removed)})")
            affected = sorted(
                set(
                    stored["dataset"]
                    .filter(pc.is_in(stored["id"], value_set=pa.array(removed, pa.string())))
                    .to_pylist()
                )
            )
            kinds = scan(table, ["dataset", "kind"])
            for name in affected:
                n_images, n_texts = _count_kinds(kinds, name)
                tx.conn.execute(
                    "UPDATE datasets SET n_images = ?, n_texts = ?, updated_at = ? WHERE name = ?",
                    (n_images, n_texts, utc_now(), name),
                )
        logger.info("remove_items: %d items removed", len(removed))
        return removed

    def datasets(self) -> list[DatasetInfo]:
        """Metadata of every dataset, in the order they were first added."""
        with self._snapshot() as (conn, _):
            rows = conn.execute(
                "SELECT name, classes, skipped, n_images, n_texts, added_at, updated_at "
                "FROM datasets ORDER BY rowid"
            ).fetchall()
        return [_dataset_info(row) for row in rows]

    def dataset(self, name: str) -> DatasetInfo:
        """Metadata of one dataset; raises ``UnknownDatasetError`` if absent."""
        for info in self.datasets():
            if info.name == name:
                return info
        raise UnknownDatasetError(f"workspace has no dataset {name!r}")

    def items(
        self, kind: str | None = None, dataset: str | None = None, *, thumbnails: bool = False
    ) -> pd.DataFrame:
        """Items as a table, one row per item.

        Parameters
        ----------
        kind : {"image", "text"} | None
            Only items of this kind.
        dataset : str | None
            Only items of this dataset.
        thumbnails : bool
            Add the ``thumbnail`` column (JPEG bytes, None for texts).

        Returns
        -------
        pandas.DataFrame
            Columns ``id, kind, dataset, label, split, text, image_id, content_hash,
            source`` (+ ``thumbnail``). Rows: datasets in the order they were added;
            within one, images then texts, each in dataset order (captions by index).
        """
        _check_kind(kind)
        columns = list(ITEM_PUBLIC_COLUMNS) + (["thumbnail"] if thumbnails else [])
        with self._snapshot() as (conn, head):
            table = self._item_rows(conn, head, columns, kind, dataset)
        return table.to_pandas()

    def thumbnail(self, item_id: str) -> bytes:
        """JPEG thumbnail bytes of an image item.

        Raises
        ------
        UnknownItemError
            No item ``item_id``.
        ValueError
            The item is not an image (text items have no thumbnail).
        """
        with self._snapshot() as (_, head):
            version = head.get(ITEMS_TABLE)
            row_id = None
            if version is not None:
                row_id = self._tables.lookup(ITEMS_TABLE, version, "id").get(item_id)
            if row_id is None:
                raise UnknownItemError(f"unknown item id {item_id!r}")
            row = self._tables.take(ITEMS_TABLE, version, np.array([row_id]), ["kind", "thumbnail"])
        thumb = row["thumbnail"][0].as_py()
        if thumb is None:
            kind = row["kind"][0].as_py()
            raise ValueError(f"item {item_id!r} is a {kind} item; only images have thumbnails")
        return thumb

    # ------------------------------------------------------------ embeddings

    def put_embeddings(
        self,
        encoder_id: str,
        item_ids: Sequence[str],
        content_hashes: Sequence[str],
        vectors: np.ndarray,
    ) -> PutResult:
        """Store embedding vectors of items for one encoder, atomically.

        Each item gets the vector of its content hash; vectors also enter the cache
        keyed by ``(encoder_id, content_hash)`` (see :meth:`cached_vectors`). Upserts:
        a later call for the same item or content hash replaces the earlier value; a
        call that changes nothing writes nothing (no commit).
        Item ids need not be items of a dataset (e.g. typed concepts).

        Parameters
        ----------
        encoder_id : str
            Encoder id (``Encoder.id``).
        item_ids : Sequence[str]
            Length n, unique.
        content_hashes : Sequence[str]
            Length n: content hash each vector was computed from.
        vectors : np.ndarray
            Shape (n, d), floating point (stored as float32), finite; ``d`` must equal
            the dimension already stored for ``encoder_id``.

        Returns
        -------
        PutResult

        Raises
        ------
        ValueError
            NaN/inf, wrong ndim or dtype, length mismatch, duplicate ids, or a dimension
            differing from the stored one. Nothing is written.
        """
        batch = validate_embeddings(encoder_id, item_ids, content_hashes, vectors)
        n = len(batch.item_ids)
        if n == 0:  # nothing to write, but a wrong dimension is still an error
            with self._snapshot() as (conn, _):
                encoder = self._encoder(conn, encoder_id)
            check_dim(encoder_id, None if encoder is None else encoder.dim, batch.dim)
            return PutResult(encoder_id, batch.dim, 0, 0, 0)
        with self._write(f"put_embeddings {encoder_id} n={n}") as tx:
            result = self._put_embeddings(tx, batch)
            if not tx.staged_versions():
                tx.mark_unchanged()  # same vectors already stored: roll back, no commit
        return result

    def _put_embeddings(self, tx: transaction.WriteTransaction, batch: EmbeddingBatch) -> PutResult:
        """Write a validated, non-empty batch inside an open write."""
        encoder_id = batch.encoder_id
        encoder = self._encoder(tx.conn, encoder_id)
        check_dim(encoder_id, None if encoder is None else encoder.dim, batch.dim)
        now = utc_now()
        if encoder is None:
            encoder = _Encoder(encoder_id, encoder_table_key(encoder_id), batch.dim)
            tx.conn.execute(
                "INSERT INTO encoders(encoder_id, table_key, dim, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (encoder_id, encoder.key, batch.dim, now, now),
            )
        else:
            tx.conn.execute(
                "UPDATE encoders SET updated_at = ? WHERE encoder_id = ?", (now, encoder_id)
            )
        cache = tx.table(encoder.cache, cache_schema(batch.dim))
        vectors_written = upserts.upsert_vectors(cache, batch)
        assignments = tx.table(encoder.embeddings, EMBEDDINGS_SCHEMA)
        items_written = upserts.upsert_assignments(assignments, batch)
        return PutResult(encoder_id, batch.dim, len(batch.item_ids), items_written, vectors_written)

    def get_embeddings(
        self,
        encoder_id: str,
        item_ids: Sequence[str] | None = None,
        *,
        kind: str | None = None,
        dataset: str | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """Stored embeddings of items for one encoder.

        Parameters
        ----------
        encoder_id : str
            Encoder id.
        item_ids : Sequence[str] | None
            Return exactly these items, in this order (repeats allowed). When None,
            return every item (filtered by ``kind`` / ``dataset``) that has an
            embedding, in :meth:`items` order.
        kind, dataset : str | None
            Filters, only when ``item_ids`` is None.

        Returns
        -------
        ids : list[str]
            Length m.
        vectors : np.ndarray
            Shape (m, d), float32; row ``i`` belongs to ``ids[i]``.

        Raises
        ------
        UnknownEncoderError
            No embeddings for ``encoder_id``.
        UnknownItemError
            Some requested ids have no embedding for ``encoder_id``.
        UnknownDatasetError
            No dataset ``dataset``.
        """
        if item_ids is not None and (kind is not None or dataset is not None):
            raise ValueError("pass either item_ids or the kind/dataset filters, not both")
        _check_kind(kind)
        if dataset is not None:
            self.dataset(dataset)  # an unknown name is an error, not an empty answer
        with self._snapshot() as (conn, head):
            encoder = self._encoder(conn, encoder_id)
            if encoder is None:
                raise UnknownEncoderError(f"workspace has no embeddings for encoder {encoder_id!r}")
            assigned = self._tables.key_columns(
                encoder.embeddings, head[encoder.embeddings], ("item_id", "content_hash")
            )
            if item_ids is None:
                ids = self._item_rows(conn, head, ["id"], kind, dataset)["id"].combine_chunks()
                pos = positions(ids, assigned["item_id"])
                ids = ids.filter(pa.array(pos >= 0))
                pos = pos[pos >= 0]
            else:
                ids = pa.array(check_strings("item_ids", item_ids), pa.string())
                pos = positions(ids, assigned["item_id"])
                if (pos < 0).any():
                    missing = np.flatnonzero(pos < 0)
                    raise UnknownItemError(
                        f"{missing.size} of {len(ids)} item ids have no embedding for encoder "
                        f"{encoder_id!r}, e.g. {ids[int(missing[0])].as_py()!r}"
                    )
            hashes = assigned["content_hash"].take(pa.array(pos))
            vectors = self._cached(head, encoder, hashes, require_all=True)[1]
        return ids.to_pylist(), vectors

    def cached_vectors(
        self, encoder_id: str, content_hashes: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Cached vectors by content hash, for skipping already-encoded content.

        Parameters
        ----------
        encoder_id : str
            Encoder id.
        content_hashes : Sequence[str]
            Hashes to look up (repeats allowed).

        Returns
        -------
        dict[str, np.ndarray]
            ``{content_hash: vector}`` for the hashes with a cached vector (each of
            shape (d,), float32); misses are absent. Empty for an unknown encoder.
        """
        hashes = check_strings("content_hashes", content_hashes)
        wanted = pa.array(list(dict.fromkeys(hashes)), pa.string())
        with self._snapshot() as (conn, head):
            encoder = self._encoder(conn, encoder_id)
            if encoder is None or len(wanted) == 0:
                return {}
            found, vectors = self._cached(head, encoder, wanted, require_all=False)
        return dict(zip(found.to_pylist(), vectors, strict=True))

    def _cached(
        self, head: dict[str, int], encoder: _Encoder, hashes: pa.Array, require_all: bool
    ) -> tuple[pa.Array, np.ndarray]:
        """Look up vectors of ``hashes`` (shape (m,)) in an encoder's committed cache.

        Returns the found hashes (m' <= m) and their vectors, shape (m', d).
        """
        version = head[encoder.cache]
        cached = self._tables.key_columns(encoder.cache, version, ("content_hash",))
        pos = positions(hashes, cached["content_hash"])
        if require_all and (pos < 0).any():
            raise RuntimeError(f"workspace {self._path}: embeddings refer to uncached vectors")
        found = pos >= 0
        row_ids = cached[ROWID].to_numpy()[pos[found]]
        vectors = self._tables.vectors(encoder.cache, version, row_ids, encoder.dim)
        return hashes.filter(pa.array(found)), vectors

    def embedded_encoders(self) -> list[str]:
        """Encoder ids that have embeddings in the workspace, oldest first."""
        with self._snapshot() as (conn, _):
            rows = conn.execute("SELECT encoder_id FROM encoders ORDER BY rowid").fetchall()
        return [encoder_id for (encoder_id,) in rows]

    # ------------------------------------------------------------ projections

    def put_projection(
        self,
        name: str,
        encoder_id: str,
        item_ids: Sequence[str],
        coords: np.ndarray,
        *,
        method: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        model_files: dict[str, bytes] | None = None,
    ) -> ProjectionInfo:
        """Store a 2-D layout of items (upsert by ``name``), atomically.

        A later call with the same name replaces everything stored under it: ids,
        coordinates, metadata and model files (``created_at`` is kept).

        Parameters
        ----------
        name : str
            Caller-chosen unique name, e.g. ``"mfm:<dataset>:<encoder-id-digest>"``
            (non-empty, no surrounding whitespace, at most 255 characters).
        encoder_id : str
            Encoder whose embeddings were projected.
        item_ids : Sequence[str]
            Length n >= 1, unique; every id must be an item of the workspace.
        coords : np.ndarray
            Shape (n, 2), floating point (stored as float32), finite; row ``i`` is the
            position of ``item_ids[i]``.
        method : str
            Projection method, e.g. ``"mfm"``.
        params, metrics : dict[str, Any]
            JSON-serialisable dicts (string keys, finite numbers; NumPy scalars and
            arrays become numbers and lists, tuples become lists).
        model_files : dict[str, bytes] | None
            Files needed to ``transform`` new points later, e.g. a fitted MFM's
            ``mfm.safetensors`` and ``mfm.json``; plain file names (no ``/``). Read them
            back with :meth:`projection_model_files`.

        Returns
        -------
        ProjectionInfo

        Raises
        ------
        ValueError
            Bad name, ids, shape, dtype, NaN/inf, params, metrics or file names; checked
            before anything is written.
        UnknownItemError
            Some ids are not items of the workspace (names the first few, and why).
            Nothing is written.
        """
        batch = proj.validate_projection(
            name,
            encoder_id,
            item_ids,
            coords,
            method=method,
            params=params,
            metrics=metrics,
            model_files=model_files,
        )
        n = len(batch.item_ids)
        with self._write(f"put_projection {name} n={n}") as tx:
            info = self._put_projection(tx, batch)
        logger.info(
            "put_projection %s: %d items, encoder %s, %d model file(s)",
            name,
            n,
            batch.encoder_id,
            len(batch.model_files),
        )
        return info

    def _put_projection(
        self, tx: transaction.WriteTransaction, batch: proj.ProjectionBatch
    ) -> ProjectionInfo:
        """Write a validated projection inside an open write (upsert by name)."""
        name = batch.name
        key = projection_key(name)
        n = len(batch.item_ids)
        self._require_items(tx.conn, tx.head, batch.item_ids)

        old = tx.conn.execute(
            "SELECT model_files FROM projections WHERE name = ?", (name,)
        ).fetchone()
        coords_table = tx.table(PROJECTION_COORDS_TABLE, PROJECTION_COORDS_SCHEMA)
        if old is not None:
            proj.delete_rows(coords_table, key)
        coords_table.add(proj.coords_rows(key, batch))
        had_files = old is not None and bool(json.loads(old[0]))
        if had_files or batch.model_files:
            files_table = tx.table(PROJECTION_FILES_TABLE, PROJECTION_FILES_SCHEMA)
            if had_files:
                proj.delete_rows(files_table, key)
            if batch.model_files:
                files_table.add(proj.files_rows(key, batch.model_files))
        now = utc_now()
        tx.conn.execute(
            "INSERT INTO projections(name, key, encoder_id, method, params, metrics, "
            "n_items, model_files, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "encoder_id = excluded.encoder_id, method = excluded.method, "
            "params = excluded.params, metrics = excluded.metrics, "
            "n_items = excluded.n_items, model_files = excluded.model_files, "
            "updated_at = excluded.updated_at",
            (
                name,
                key,
                batch.encoder_id,
                batch.method,
                batch.params_json,
                batch.metrics_json,
                n,
                json.dumps(sorted(batch.model_files)),
                now,
                now,
            ),
        )
        return self._projection_info(tx.conn, name)

    def get_projection(self, name: str) -> tuple[list[str], np.ndarray]:
        """Item ids and 2-D coordinates of a projection, in the order they were stored.

        Returns
        -------
        ids : list[str]
            Length n.
        coords : np.ndarray
            Shape (n, 2), float32; row ``i`` belongs to ``ids[i]``.

        Raises
        ------
        UnknownProjectionError
            No projection ``name``.
        """
        with self._snapshot() as (conn, head):
            key, n_items = self._projection_key(conn, name)
            handle = self._tables.pinned(PROJECTION_COORDS_TABLE, head[PROJECTION_COORDS_TABLE])
            ids, coords = proj.read_coords(handle, key)
        if len(ids) != n_items:
            raise RuntimeError(
                f"workspace {self._path}: projection {name!r} has {len(ids)} stored rows, "
                f"its catalog entry says {n_items}"
            )
        return ids, coords

    def projection_model_files(self, name: str) -> dict[str, bytes]:
        """Model files stored with a projection (empty when it has none).

        Returns
        -------
        dict[str, bytes]
            ``{file name: content}``, exactly as given to :meth:`put_projection`.

        Raises
        ------
        UnknownProjectionError
            No projection ``name``.
        """
        with self._snapshot() as (conn, head):
            info = self._projection_info(conn, name)
            if not info.model_files:
                return {}
            key = projection_key(name)
            handle = self._tables.pinned(PROJECTION_FILES_TABLE, head[PROJECTION_FILES_TABLE])
            files = proj.read_files(handle, key)
        if sorted(files) != list(info.model_files):
            raise RuntimeError(
                f"workspace {self._path}: projection {name!r} has model files "
                f"{sorted(files)}, its catalog entry says {list(info.model_files)}"
            )
        return files

    def projection_info(self, name: str) -> ProjectionInfo:
        """Metadata of one projection; raises ``UnknownProjectionError`` if absent."""
        with self._snapshot() as (conn, _):
            return self._projection_info(conn, name)

    def projections(self, encoder_id: str | None = None) -> list[ProjectionInfo]:
        """Metadata of every projection (of one encoder), in the order first stored."""
        query = f"SELECT {proj.INFO_COLUMNS} FROM projections"
        args: tuple[str, ...] = ()
        if encoder_id is not None:
            query, args = query + " WHERE encoder_id = ?", (encoder_id,)
        with self._snapshot() as (conn, _):
            rows = conn.execute(query + " ORDER BY rowid", args).fetchall()
        return [proj.projection_info(row) for row in rows]

    def remove_projection(self, name: str) -> None:
        """Delete a projection, its coordinates and its model files, atomically.

        Raises
        ------
        UnknownProjectionError
            No projection ``name``.
        """
        with self._write(f"remove_projection {name}") as tx:
            info = self._projection_info(tx.conn, name)
            key = projection_key(name)
            proj.delete_rows(tx.table(PROJECTION_COORDS_TABLE, PROJECTION_COORDS_SCHEMA), key)
            if info.model_files:
                proj.delete_rows(tx.table(PROJECTION_FILES_TABLE, PROJECTION_FILES_SCHEMA), key)
            tx.conn.execute("DELETE FROM projections WHERE name = ?", (name,))
        logger.info("remove_projection %s: %d items removed", name, info.n_items)

    @staticmethod
    def _projection_info(conn: sqlite3.Connection, name: str) -> ProjectionInfo:
        row = conn.execute(
            f"SELECT {proj.INFO_COLUMNS} FROM projections WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise UnknownProjectionError(f"workspace has no projection {name!r}")
        return proj.projection_info(row)

    @staticmethod
    def _projection_key(conn: sqlite3.Connection, name: str) -> tuple[str, int]:
        row = conn.execute(
            "SELECT key, n_items FROM projections WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise UnknownProjectionError(f"workspace has no projection {name!r}")
        return row[0], int(row[1])

    # ------------------------------------------------------------ sets

    def create_set(
        self,
        name: str,
        item_ids: Sequence[str],
        *,
        color: str | None = None,
        description: str = "",
    ) -> SetInfo:
        """Create a named selection of items, atomically.

        Parameters
        ----------
        name : str
            Unique among sets after trimming surrounding whitespace; 1-100 characters.
        item_ids : Sequence[str]
            At least one id; every id must be an item of the workspace. Repeats are
            dropped (first occurrence kept), the order is kept.
        color : str | None
            Display colour (any string up to 64 characters, e.g. ``"#e45756"``), or None.
        description : str
            Free text (up to 10 000 characters).

        Returns
        -------
        SetInfo
            With the new set's id.

        Raises
        ------
        ValueError
            Empty ``item_ids`` ("a set needs at least one item"), a bad or taken name,
            a bad colour or description. Nothing is written.
        UnknownItemError
            Some ids are not items of the workspace (names the first few, and why).

        Malformed arguments are refused first, then unknown item ids, then a taken name
        (the HTTP API's order: 422, 404, 409).
        """
        name = set_rows.check_set_name(name)
        color = set_rows.check_color(color)
        description = set_rows.check_description(description)
        ids = set_rows.check_members(item_ids)
        with self._write(f"create_set {name}") as tx:
            self._require_items(tx.conn, tx.head, ids)
            set_rows.require_free_name(tx.conn, name)
            set_id = set_rows.insert_set(tx.conn, name, color, description, utc_now())
            set_rows.write_members(tx.conn, set_id, ids)
            info = set_rows.read_set(tx.conn, set_id)
        logger.info("create_set %s (id %d): %d items", name, set_id, len(ids))
        return info

    def add_to_set(self, name: str, item_ids: Sequence[str]) -> SetInfo:
        """Add items to the set called ``name``, creating it when there is none, atomically.

        The lookup and the change are one write, so two callers tagging items into the same
        set at once both keep their items (a read, then :meth:`update_set_items`, would lose
        one caller's), and two creating it at once make one set.

        Parameters
        ----------
        name : str
            As for :meth:`create_set` (trimmed before the lookup).
        item_ids : Sequence[str]
            At least one item id; those already members keep their place, new ones are
            appended in order.

        Raises
        ------
        ValueError
            Bad name or ids. Nothing is written.
        UnknownItemError
            Some ids are not items of the workspace.
        """
        name = set_rows.check_set_name(name)
        ids = set_rows.check_members(item_ids)
        with self._write(f"add_to_set {name} n={len(ids)}") as tx:
            self._require_items(tx.conn, tx.head, ids)
            now = utc_now()
            found = set_rows.set_named(tx.conn, name)
            if found is None:
                set_id = set_rows.insert_set(tx.conn, name, None, "", now)
                set_rows.write_members(tx.conn, set_id, ids)
            else:
                set_id = found
                members = set_rows.read_set(tx.conn, set_id).item_ids
                merged = list(dict.fromkeys([*members, *ids]))
                if merged == members:
                    tx.mark_unchanged()
                    return set_rows.read_set(tx.conn, set_id)
                set_rows.write_members(tx.conn, set_id, merged)
                set_rows.touch(tx.conn, set_id, now)
            info = set_rows.read_set(tx.conn, set_id)
        logger.info("add_to_set %s (id %d): %d items", name, set_id, info.n_items)
        return info

    def sets(self) -> list[SetInfo]:
        """Every set, by id (creation order)."""
        with self._snapshot() as (conn, _):
            return set_rows.read_sets(conn)

    def get_set(self, set_id: int) -> SetInfo:
        """One set; raises ``UnknownSetError`` if there is no set ``set_id``."""
        set_id = set_rows.check_set_id(set_id)
        with self._snapshot() as (conn, _):
            return set_rows.read_set(conn, set_id)

    def rename_set(self, set_id: int, name: str) -> SetInfo:
        """Rename a set (same rules as :meth:`create_set`), atomically; stored intents
        that name the set follow it. Its own name again writes nothing.

        Raises
        ------
        UnknownSetError
            No set ``set_id``.
        ValueError
            Bad name, or another set has it.
        """
        set_id = set_rows.check_set_id(set_id)
        name = set_rows.check_set_name(name)
        with self._write(f"rename_set {set_id} {name}") as tx:
            old = set_rows.read_set(tx.conn, set_id)
            if old.name == name:
                tx.mark_unchanged()  # its own name: no write, updated_at kept
                return old
            set_rows.require_free_name(tx.conn, name, set_id)
            set_rows.rename(tx.conn, set_id, name, utc_now())
            runs.rename_set_references(tx.conn, old.name, name)
            info = set_rows.read_set(tx.conn, set_id)
        logger.info("rename_set %d: %s", set_id, name)
        return info

    def update_set_items(self, set_id: int, item_ids: Sequence[str]) -> SetInfo:
        """Replace the members of a set (same rules as :meth:`create_set`), atomically.

        Raises
        ------
        UnknownSetError
            No set ``set_id``.
        ValueError
            Empty or malformed ``item_ids``.
        UnknownItemError
            Some ids are not items of the workspace.
        """
        set_id = set_rows.check_set_id(set_id)
        ids = set_rows.check_members(item_ids)
        with self._write(f"update_set_items {set_id} n={len(ids)}") as tx:
            set_rows.require_set(tx.conn, set_id)
            self._require_items(tx.conn, tx.head, ids)
            set_rows.write_members(tx.conn, set_id, ids)
            set_rows.touch(tx.conn, set_id, utc_now())
            info = set_rows.read_set(tx.conn, set_id)
        logger.info("update_set_items %d: %d items", set_id, len(ids))
        return info

    def delete_set(self, set_id: int) -> None:
        """Delete a set, atomically.

        Raises
        ------
        UnknownSetError
            No set ``set_id``.
        SetInUseError
            A stored intent refers to the set (nothing changed).
        """
        set_id = set_rows.check_set_id(set_id)
        with self._write(f"delete_set {set_id}") as tx:
            name = set_rows.read_set(tx.conn, set_id).name
            if named := runs.intents_naming_set(tx.conn, set_id, name):
                raise SetInUseError(_named_by_intents(named, f"set {name!r}"))
            set_rows.delete_set(tx.conn, set_id)
        logger.info("delete_set %d", set_id)

    # ------------------------------------------------------------ intents

    def create_intent(self, spec: dict[str, Any]) -> IntentInfo:
        """Store an alignment intent (a JSON object), atomically.

        The store checks only that ``spec`` is a JSON object of reasonable size and not
        already stored; ``modalchorus.align.intent_from_dict`` checks what it means.

        Raises
        ------
        ValueError
            ``spec`` is not a JSON object, or too large.
        DuplicateIntentError
            An equal spec is stored already (it would count twice in a run); nothing is
            written. Specs are compared as given: pass them with their defaults filled in.
        """
        text = runs.intent_json(spec)
        with self._write("create_intent") as tx:
            if (existing := runs.find_intent(tx.conn, json.loads(text))) is not None:
                raise DuplicateIntentError(
                    f"this intent is stored already as intent #{existing}: the same intent "
                    "twice would count twice in a run (change that one's strength instead)",
                    existing,
                )
            cursor = tx.conn.execute(
                "INSERT INTO intents(spec, created_at) VALUES (?, ?)", (text, utc_now())
            )
            return runs.read_intent(tx.conn, int(cursor.lastrowid))

    def intents(self) -> list[IntentInfo]:
        """Every stored intent, by id (creation order)."""
        with self._snapshot() as (conn, _):
            return runs.read_intents(conn)

    def delete_intent(self, intent_id: int) -> None:
        """Delete a stored intent; raises :class:`UnknownIntentError` for an unknown id."""
        with self._write(f"delete_intent {intent_id}") as tx:
            runs.read_intent(tx.conn, intent_id)
            tx.conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,))

    # ------------------------------------------------------------ alignment runs

    def encoder_family(self, encoder_id: str) -> str:
        """The base encoder id of an embedding version (itself when not an aligned version)."""
        with self._snapshot() as (conn, _):
            return runs.base_of(conn, encoder_id)

    def active_run(self, encoder_id: str) -> RunInfo | None:
        """The run whose version is current in ``encoder_id``'s family (None: the base)."""
        with self._snapshot() as (conn, _):
            run_id = runs.active_run_id(conn, runs.base_of(conn, encoder_id))
            return None if run_id is None else runs.read_run(conn, run_id)

    def alignment_runs(self, base_encoder_id: str | None = None) -> list[RunInfo]:
        """Recorded alignment runs, oldest first, optionally of one encoder family."""
        with self._snapshot() as (conn, _):
            return runs.read_runs(conn, base_encoder_id)

    def alignment_run(self, run_id: int) -> RunInfo:
        """One recorded run; raises :class:`UnknownRunError`."""
        with self._snapshot() as (conn, _):
            return runs.read_run(conn, run_id)

    def alignment_run_files(self, run_id: int) -> dict[str, bytes]:
        """``{filename: bytes}`` of a run's tuned weights (safetensors + JSON)."""
        with self._snapshot() as (conn, _):
            return runs.read_run_files(conn, run_id)

    def commit_alignment_run(
        self,
        record: dict[str, Any],
        embeddings: tuple[Sequence[str], Sequence[str], np.ndarray],
        projections: Sequence[dict[str, Any]],
        files: dict[str, bytes],
    ) -> RunInfo:
        """Record a run with the version it produced and make it current, in one commit.

        Either everything below becomes visible together, or (on any error, or if the
        process dies) nothing does and the parent version stays current.

        Parameters
        ----------
        record : dict
            ``parent_run_id``, ``base_encoder_id``, ``parent_encoder_id``, ``encoder_id``
            (the new version, not yet in the workspace), ``scope``, ``intents``,
            ``params``, ``metrics_before``, ``metrics_after``, ``moved``, ``seconds``.
        embeddings : (item_ids, content_hashes, vectors)
            The new version's vectors, shape (n, d), as for :meth:`put_embeddings`.
        projections : Sequence[dict]
            Keyword arguments of :meth:`put_projection` (``name``, ``encoder_id``,
            ``item_ids``, ``coords``, ``method``, ``params``, ``metrics``,
            ``model_files``) for the layouts of the new version.
        files : dict[str, bytes]
            The run's weights, plain file names.

        Returns
        -------
        RunInfo
        """
        batch = validate_embeddings(record["encoder_id"], *embeddings)
        if not batch.item_ids:
            raise ValueError("an alignment run must produce at least one embedding")
        layouts = [
            proj.validate_projection(
                p["name"],
                p["encoder_id"],
                p["item_ids"],
                p["coords"],
                method=p["method"],
                params=p["params"],
                metrics=p["metrics"],
                model_files=p.get("model_files"),
            )
            for p in projections
        ]
        with self._write(f"alignment run -> {record['encoder_id']}") as tx:
            base = record["base_encoder_id"]
            if runs.active_run_id(tx.conn, base) != record["parent_run_id"]:
                raise RuntimeError(
                    "the active version changed while the run was tuning (another run, undo "
                    "or redo); nothing was saved, run again"
                )
            if self._encoder(tx.conn, batch.encoder_id) is not None:
                raise ValueError(f"embedding version {batch.encoder_id!r} already exists")
            self._put_embeddings(tx, batch)
            for layout in layouts:
                self._put_projection(tx, layout)
            run_id = runs.insert_run(tx.conn, record, files, utc_now())
            runs.set_active_run(tx.conn, base, run_id)
            info = runs.read_run(tx.conn, run_id)
        logger.info("alignment run %d committed: %s is current", run_id, batch.encoder_id)
        return info

    def activate_alignment_run(self, run_id: int) -> RunInfo:
        """Make a recorded run's version the current one of its family, atomically."""
        with self._write(f"alignment activate {run_id}") as tx:
            run = runs.read_run(tx.conn, run_id)
            runs.set_active_run(tx.conn, run.base_encoder_id, run_id)
            return runs.read_run(tx.conn, run_id)

    def step_alignment(self, encoder_id: str, direction: str) -> RunInfo | None:
        """Undo (``"undo"``) or redo (``"redo"``) in ``encoder_id``'s family, atomically.

        Undo makes the active run's parent version current; redo makes the newest run
        tuned from the current version current.

        Returns
        -------
        RunInfo | None
            The run undone or redone (re-read, so ``active`` reflects the change), or
            None when there is nothing to undo or redo.
        """
        if direction not in ("undo", "redo"):
            raise ValueError(f"direction must be 'undo' or 'redo', got {direction!r}")
        with self._write(f"alignment {direction} {encoder_id}") as tx:
            base = runs.base_of(tx.conn, encoder_id)
            current = runs.active_run_id(tx.conn, base)
            target = current if direction == "undo" else runs.newest_child(tx.conn, base, current)
            if target is None:
                tx.mark_unchanged()  # nothing to undo or redo: no commit
                return None
            if direction == "undo":
                runs.set_active_run(tx.conn, base, runs.read_run(tx.conn, current).parent_run_id)
            else:
                runs.set_active_run(tx.conn, base, target)
            return runs.read_run(tx.conn, target)

    # ------------------------------------------------------------ overview

    def summary(self) -> dict[str, Any]:
        """Counts and sizes, as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``path``; ``schema_version``; ``last_commit`` (``seq``, ``op``,
            ``created_at``, or None); ``datasets`` ({name: {"image", "text",
            "skipped"}}); ``items`` ({"image", "text", "total"}); ``encoders``
            ({encoder_id: {"dim", "items", "vectors"}}); ``projections`` ({"total",
            "by_encoder": {encoder_id: count}}); ``sets`` ({"total"}); ``disk_bytes``
            ({"catalog", "lance", "total"}).
        """
        with self._snapshot() as (conn, head):
            schema_version = int(
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            )
            last = conn.execute(
                "SELECT seq, op, created_at FROM commits ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            datasets = {
                info[0]: len(json.loads(info[1]))
                for info in conn.execute("SELECT name, skipped FROM datasets ORDER BY rowid")
            }
            kinds = self._item_rows(conn, head, ["dataset", "kind"], None, None)
            encoders = {}
            for encoder_id, key, dim in conn.execute(
                "SELECT encoder_id, table_key, dim FROM encoders ORDER BY rowid"
            ):
                enc = _Encoder(encoder_id, key, int(dim))
                encoders[encoder_id] = {
                    "dim": enc.dim,
                    "items": self._tables.pinned(enc.embeddings, head[enc.embeddings]).count_rows(),
                    "vectors": self._tables.pinned(enc.cache, head[enc.cache]).count_rows(),
                }
            by_encoder = dict(
                conn.execute(
                    "SELECT encoder_id, COUNT(*) FROM projections GROUP BY encoder_id "
                    "ORDER BY MIN(rowid)"
                ).fetchall()
            )
            (n_sets,) = conn.execute("SELECT COUNT(*) FROM sets").fetchone()
        per_dataset = {}
        for name, n_skipped in datasets.items():
            n_images, n_texts = _count_kinds(kinds, name)
            per_dataset[name] = {"image": n_images, "text": n_texts, "skipped": n_skipped}
        n_image = int(pc.sum(pc.equal(kinds["kind"], "image")).as_py() or 0)
        n_text = int(pc.sum(pc.equal(kinds["kind"], "text")).as_py() or 0)
        catalog_bytes = sum(
            p.stat().st_size for p in self._path.glob(f"{CATALOG_FILE}*") if p.is_file()
        )
        lance_bytes = _dir_bytes(self._path / LANCE_DIR)
        return {
            "path": str(self._path),
            "schema_version": schema_version,
            "last_commit": None
            if last is None
            else {"seq": int(last[0]), "op": last[1], "created_at": last[2]},
            "datasets": per_dataset,
            "items": {"image": n_image, "text": n_text, "total": n_image + n_text},
            "encoders": encoders,
            "projections": {"total": sum(by_encoder.values()), "by_encoder": by_encoder},
            "sets": {"total": int(n_sets)},
            "disk_bytes": {
                "catalog": catalog_bytes,
                "lance": lance_bytes,
                "total": catalog_bytes + lance_bytes,
            },
        }


# ---------------------------------------------------------------- helpers


def _is_own_entry(name: str) -> bool:
    """Entries a crashed ``create`` may leave behind (a retry may reuse the directory)."""
    return (
        name == LANCE_DIR or name.startswith(f".{CATALOG_FILE}.") or name.startswith(CATALOG_FILE)
    )


def _publish(tmp: Path, catalog: Path) -> None:
    """Move a fully initialised catalog into place without replacing an existing one."""
    try:
        os.link(tmp, catalog)  # atomic, and fails if another process won the race
    except FileExistsError:
        raise WorkspaceExistsError(f"a workspace already exists at {catalog.parent}") from None
    except OSError:  # no hard links on this filesystem
        if catalog.exists():
            raise WorkspaceExistsError(f"a workspace already exists at {catalog.parent}") from None
        os.replace(tmp, catalog)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")


def _sql_literal(value: str) -> str:
    """A string as a SQL literal for Lance filter expressions."""
    return "'" + value.replace("'", "''") + "'"


def _named_by_intents(intent_ids: list[int], what: str) -> str:
    """Why ``what`` cannot go: the stored intents that name it."""
    return (
        f"stored intents {', '.join(f'#{i}' for i in intent_ids)} name {what}; "
        "delete those intents first"
    )


def _release_items(conn: sqlite3.Connection, item_ids: set[str], what: str) -> None:
    """Drop items about to be deleted from every set, or raise ``ItemInUseError`` (nothing
    changed) while a stored intent names one of them or a set holds nothing else."""
    if named := runs.intents_naming(conn, item_ids):
        raise ItemInUseError(_named_by_intents(named, what))
    if emptied := set_rows.remove_members(conn, item_ids, utc_now()):
        raise ItemInUseError(
            f"removing {what} would leave sets {', '.join(map(repr, emptied))} empty; "
            "delete those sets first"
        )


def _count_kinds(table: pa.Table, dataset: str) -> tuple[int, int]:
    """(images, texts) of ``dataset`` in a table with ``dataset`` and ``kind`` columns."""
    kinds = table["kind"].filter(pc.equal(table["dataset"], dataset))
    n_image = int(pc.sum(pc.equal(kinds, "image")).as_py() or 0)
    n_text = int(pc.sum(pc.equal(kinds, "text")).as_py() or 0)
    return n_image, n_text


def _dataset_info(row: tuple) -> DatasetInfo:
    name, classes, skipped, n_images, n_texts, added_at, updated_at = row
    return DatasetInfo(
        name=name,
        classes=None if classes is None else tuple(json.loads(classes)),
        n_images=int(n_images),
        n_texts=int(n_texts),
        skipped=tuple(SkippedItem(s["id"], s["reason"]) for s in json.loads(skipped)),
        added_at=added_at,
        updated_at=updated_at,
    )


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed concurrently
                total += (Path(root) / name).stat().st_size
    return total
