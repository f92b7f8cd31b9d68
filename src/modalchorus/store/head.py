"""The head: the commit pointer naming the Lance table versions readers must see.

Lance tables are versioned and every Lance write creates a new immutable version. A
write is *committed* only when the new versions are recorded here, in the ``head``
table of the SQLite catalog, in one SQLite transaction. Readers read the head first
and open every table at the recorded version, so versions written by a writer that
died before its SQLite commit are invisible, and the previous state stays exactly
intact.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping

from modalchorus.store.catalog import utc_now

logger = logging.getLogger(__name__)


def read_head(conn: sqlite3.Connection) -> dict[str, int]:
    """Committed Lance version of every table in the workspace.

    Parameters
    ----------
    conn : sqlite3.Connection
        Catalog connection, normally inside a read or write transaction.

    Returns
    -------
    dict[str, int]
        ``{table_name: version}``; a table absent here does not exist for readers.
    """
    return {name: int(v) for name, v in conn.execute("SELECT table_name, version FROM head")}


def write_head(conn: sqlite3.Connection, versions: Mapping[str, int], op: str) -> int:
    """Point the head at new table versions and log the commit.

    Must run inside the writer's open transaction: the change becomes visible (and
    durable) only when that transaction commits.

    Parameters
    ----------
    conn : sqlite3.Connection
        Catalog connection holding the write lock.
    versions : Mapping[str, int]
        New committed version per written table; tables not named keep theirs.
    op : str
        Short description of the operation, for the commit log.

    Returns
    -------
    int
        Sequence number of the commit.
    """
    conn.executemany(
        "INSERT INTO head(table_name, version) VALUES (?, ?) "
        "ON CONFLICT(table_name) DO UPDATE SET version = excluded.version",
        sorted(versions.items()),
    )
    cur = conn.execute(
        "INSERT INTO commits(created_at, op, tables) VALUES (?, ?, ?)",
        (utc_now(), op, json.dumps(dict(sorted(versions.items())))),
    )
    seq = int(cur.lastrowid or 0)
    logger.debug("commit %d (%s): %s", seq, op, dict(versions))
    return seq


def drop_from_head(conn: sqlite3.Connection, table_names: list[str]) -> None:
    """Remove tables from the head (they stop existing for readers at commit)."""
    conn.executemany("DELETE FROM head WHERE table_name = ?", [(n,) for n in table_names])
