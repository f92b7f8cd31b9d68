"""The SQLite catalog (``workspace.sqlite``): connections, creation, validation, transactions.

Every public operation opens its own short-lived connection (cheap, and thread-safe by
construction). Connections are opened with ``mode=rw`` so a missing file is an error,
never silently created. Writers serialise on ``BEGIN IMMEDIATE`` (SQLite's reserved
lock); readers use WAL snapshots and never block writers.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from modalchorus.store.errors import (
    IncompatibleWorkspaceError,
    NotAWorkspaceError,
    WorkspaceLockedError,
)
from modalchorus.store.schema import (
    ADDED_DDL,
    ADDED_TABLES,
    APPLICATION_ID,
    CATALOG_DDL,
    SCHEMA_VERSION,
)

logger = logging.getLogger(__name__)

#: Busy timeout for readers, in seconds (WAL readers only wait on rare checkpoints).
READ_TIMEOUT_S = 30.0


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string (microsecond precision)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path, timeout: float = READ_TIMEOUT_S) -> sqlite3.Connection:
    """Open an existing catalog read-write; never creates the file.

    Parameters
    ----------
    path : Path
        The ``workspace.sqlite`` file.
    timeout : float
        SQLite busy timeout in seconds (how long to wait for another writer's lock).

    Returns
    -------
    sqlite3.Connection
        In autocommit mode (``isolation_level=None``): transactions are explicit.
    """
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(
        uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def initialise(path: Path) -> None:
    """Create a new, empty catalog file at ``path`` (which must not exist).

    Sets the application id, ``user_version`` and ``meta.schema_version``, and switches
    the file to WAL mode (persistent). The connection is closed before returning, so no
    ``-wal``/``-shm`` side files remain and the file can be renamed or linked.
    """
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("BEGIN")
        _run_ddl(conn)
        now = utc_now()
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", now),
                ("format", "modalchorus-workspace"),
            ],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _run_ddl(conn: sqlite3.Connection, ddl: str = CATALOG_DDL + ADDED_DDL) -> None:
    """Execute DDL statement by statement inside the open transaction."""
    for statement in ddl.split(";"):
        if statement.strip():
            conn.execute(statement)


def _missing_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables of ``ADDED_TABLES`` the catalog does not have yet."""
    have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return [name for name in ADDED_TABLES if name not in have]


def upgrade(path: Path, lock_timeout: float) -> list[str]:
    """Bring a catalog written by older code up to date: create missing added tables.

    A no-op (one cheap read) for an up-to-date catalog. Otherwise takes the write lock,
    so a concurrent opener or writer never sees half of it, and creates the tables of
    :data:`~modalchorus.store.schema.ADDED_DDL` that are missing, in one transaction.

    Parameters
    ----------
    path : Path
        The ``workspace.sqlite`` file, already validated by :func:`check_catalog`.
    lock_timeout : float
        Seconds to wait for another writer.

    Returns
    -------
    list[str]
        Names of the tables created (empty when none was missing).
    """
    conn = connect(path)
    try:
        missing = _missing_tables(conn)
    finally:
        conn.close()
    if not missing:
        return []
    with write_transaction(path, lock_timeout) as conn:
        missing = _missing_tables(conn)  # another process may have done it meanwhile
        _run_ddl(conn, ADDED_DDL)
    if missing:
        logger.info("workspace catalog %s upgraded: created tables %s", path, missing)
    return missing


def check_catalog(path: Path, where: Path) -> int:
    """Validate that ``path`` is a workspace catalog this code can read.

    Parameters
    ----------
    path : Path
        The ``workspace.sqlite`` file (must exist).
    where : Path
        The workspace directory, for messages.

    Returns
    -------
    int
        The catalog's schema version.

    Raises
    ------
    NotAWorkspaceError
        The file is not SQLite, or not a ModalChorus catalog.
    IncompatibleWorkspaceError
        The catalog was written by a newer schema version.
    """
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise NotAWorkspaceError(
            f"{where} is not a workspace: cannot open {path.name} ({exc})"
        ) from None
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        raise NotAWorkspaceError(
            f"{where} is not a workspace: {path.name} is not a workspace catalog ({exc})"
        ) from None
    finally:
        conn.close()
    if app_id != APPLICATION_ID or row is None:
        raise NotAWorkspaceError(
            f"{where} is not a workspace: {path.name} is not a ModalChorus workspace catalog"
        )
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise IncompatibleWorkspaceError(
            f"workspace {where} has schema version {version}, newer than this modalchorus "
            f"supports ({SCHEMA_VERSION}); upgrade modalchorus"
        )
    return version


@contextmanager
def read_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only snapshot of the catalog (WAL read transaction).

    Everything read inside the block is from one consistent committed state.
    """
    conn = connect(path)
    try:
        conn.execute("BEGIN")
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


@contextmanager
def write_transaction(path: Path, lock_timeout: float) -> Iterator[sqlite3.Connection]:
    """Hold the workspace's write lock for the whole block, in one SQLite transaction.

    ``BEGIN IMMEDIATE`` takes SQLite's reserved lock, so at most one writer (in any
    process) is inside this block; the lock dies with its process. The transaction
    commits when the block exits normally and rolls back on any exception.

    Parameters
    ----------
    path : Path
        The ``workspace.sqlite`` file.
    lock_timeout : float
        Seconds to wait for another writer before raising ``WorkspaceLockedError``.
    """
    conn = connect(path, timeout=lock_timeout)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WorkspaceLockedError(
                    f"workspace catalog {path} is locked by another writer "
                    f"(waited {lock_timeout:g} s)"
                ) from exc
            raise
        yield conn
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
