"""All-or-nothing writes spanning several Lance tables and the SQLite catalog.

Protocol of one write (see :func:`write`):

1. ``BEGIN IMMEDIATE`` on the catalog: the write lock (one writer at a time, across
   processes; released by the OS if the process dies).
2. Read the head. Every Lance table the write touches is first reset to its head version
   (:meth:`LanceTables.writable`), discarding versions left by a writer that crashed.
3. Write Lance data: each table gets new versions, invisible to readers (they read the
   head's versions).
4. Record the tables' new versions in the head, plus any catalog rows (dataset
   metadata, encoder registry), and ``COMMIT`` — the single atomic commit point.

A failure or a kill anywhere before step 4's ``COMMIT`` leaves the head, and therefore
everything readers see, exactly as it was.

A write that finds it changes nothing (the same rows or vectors again, a set renamed to its
own name) calls :meth:`WriteTransaction.mark_unchanged`: at the end of its block the catalog
transaction rolls back instead, so no commit is logged and nothing it did in the catalog (a
refreshed timestamp, say) is kept.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from modalchorus.store import head as head_mod
from modalchorus.store.catalog import write_transaction
from modalchorus.store.tables import LanceTables

logger = logging.getLogger(__name__)


class _RollBack(Exception):
    """Raised by :func:`write` itself, after the block, to roll back an unchanged write."""


class WriteTransaction:
    """State of one in-progress write; create it with :func:`write`.

    Attributes
    ----------
    conn : sqlite3.Connection
        Catalog connection holding the write lock, inside the open transaction.
    head : dict[str, int]
        The committed head as read under the lock.
    """

    def __init__(self, conn: sqlite3.Connection, tables: LanceTables) -> None:
        self.conn = conn
        self.head = head_mod.read_head(conn)
        self._tables = tables
        self._open: dict[str, Any] = {}
        self._unchanged = False

    @property
    def unchanged(self) -> bool:
        """Whether :meth:`mark_unchanged` was called: the write ends without a commit."""
        return self._unchanged

    def mark_unchanged(self) -> None:
        """Declare that this write changes nothing: when the block ends normally, the
        catalog transaction rolls back and no commit is logged.

        The block may go on (or return at once); its catalog changes are discarded. It
        must not write Lance tables, before or after.

        Raises
        ------
        RuntimeError
            A Lance table has a new version in this write (raised here, or when the block
            ends if it wrote one later): that is a change, and discarding it would leave
            an uncommitted version for the next writer to reset.
        """
        self._refuse_staged()
        self._unchanged = True

    def _refuse_staged(self) -> None:
        """Raise ``RuntimeError`` if a Lance table has a new version in this write."""
        if staged := self.staged_versions():
            raise RuntimeError(
                f"a write that wrote new table versions ({', '.join(sorted(staged))}) "
                "cannot be marked unchanged"
            )

    def table(self, name: str, schema: pa.Schema) -> Any:
        """Writable handle of table ``name`` based on its committed version.

        The handle's final version is recorded in the head at commit, so use it for
        every change to the table in this write.
        """
        if name not in self._open:
            self._open[name] = self._tables.writable(name, self.head.get(name), schema)
        return self._open[name]

    def staged_versions(self) -> dict[str, int]:
        """Versions to commit: tables whose latest version differs from the head."""
        staged = {}
        for name, handle in self._open.items():
            version = int(handle.version)
            if self.head.get(name) != version:
                staged[name] = version
        return staged


@contextmanager
def write(
    catalog: Path, tables: LanceTables, op: str, lock_timeout: float
) -> Iterator[WriteTransaction]:
    """Run one atomic write; commits when the block exits normally, unless the block
    called ``tx.mark_unchanged()`` (then it rolls back and logs no commit).

    Parameters
    ----------
    catalog : Path
        The workspace's ``workspace.sqlite``.
    tables : LanceTables
        The workspace's Lance database.
    op : str
        Description for the commit log.
    lock_timeout : float
        Seconds to wait for another writer.

    Yields
    ------
    WriteTransaction
        Use ``tx.table(...)`` for Lance writes and ``tx.conn`` for catalog rows.
    """
    started = time.perf_counter()
    try:
        with write_transaction(catalog, lock_timeout) as conn:
            tx = WriteTransaction(conn, tables)
            yield tx
            if tx.unchanged:
                tx._refuse_staged()
                raise _RollBack  # write_transaction rolls back on any exception
            staged = tx.staged_versions()
            seq = head_mod.write_head(conn, staged, op)
    except _RollBack:
        logger.info("%s: nothing changed, nothing written", op)
        return
    logger.info(
        "committed %s as commit %d in %.2f s (tables: %s)",
        op,
        seq,
        time.perf_counter() - started,
        staged or "none",
    )
