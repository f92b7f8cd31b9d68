"""Sets: named selections of items, kept in the catalog tables ``sets`` and ``set_items``.

Sets are small transactional state, so they live in SQLite only: every change runs
inside the workspace's write transaction (:mod:`modalchorus.store.transaction`) and is
committed, with a commit-log entry, by the same single ``COMMIT`` as any other write.
This module holds the validation (pure functions) and the SQL; ``Workspace`` checks
that member items exist.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from numbers import Integral

from modalchorus.data.text import has_visible_character
from modalchorus.store.embeddings import check_strings
from modalchorus.store.errors import UnknownSetError
from modalchorus.store.records import SetInfo
from modalchorus.store.schema import is_row_id

#: Longest set name (after trimming), in characters.
MAX_SET_NAME_LENGTH = 100
#: Set colours the map can draw (regl-scatterplot reads hex only): ``#rgb`` or ``#rrggbb``.
HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
#: Longest description, in characters.
MAX_DESCRIPTION_LENGTH = 10_000


def check_set_name(name: str) -> str:
    """A set name, trimmed; must then be 1-100 characters, none a control character, some
    visible (not only U+200B zero-width spaces, say).

    Raises
    ------
    ValueError
        Not a string, empty after trimming, too long, with a control character, or with no
        visible character.
    """
    if not isinstance(name, str):
        raise ValueError(f"set name must be a string, got {type(name).__name__}")
    trimmed = name.strip()
    if not trimmed:
        raise ValueError("set name must not be empty")
    if len(trimmed) > MAX_SET_NAME_LENGTH:
        raise ValueError(
            f"set name must be at most {MAX_SET_NAME_LENGTH} characters, got {len(trimmed)}"
        )
    if any(unicodedata.category(c) == "Cc" for c in trimmed):
        raise ValueError(f"set name must not contain control characters, got {trimmed!r}")
    if not has_visible_character(trimmed):
        raise ValueError(f"set name has no visible character, got {trimmed!r}")
    return trimmed


def check_color(color: str | None) -> str | None:
    """A display colour, ``#rgb`` or ``#rrggbb`` (trimmed), or None."""
    if color is None:
        return None
    if not isinstance(color, str) or not HEX_COLOR.fullmatch(color.strip()):
        raise ValueError(
            f"color must be a hex colour such as '#4e79a7' (#rgb or #rrggbb), got {color!r:.80}"
        )
    return color.strip()


def check_description(description: str) -> str:
    """A description: a string of at most 10 000 characters (kept as given)."""
    if not isinstance(description, str):
        raise ValueError(f"description must be a string, got {type(description).__name__}")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters, "
            f"got {len(description)}"
        )
    return description


def check_set_id(set_id: int) -> int:
    """A set id: an int (not a bool); ``UnknownSetError`` beyond SQLite's integers."""
    if isinstance(set_id, bool) or not isinstance(set_id, Integral):
        raise ValueError(f"set id must be an int, got {set_id!r}")
    if not is_row_id(set_id):
        raise UnknownSetError(f"workspace has no set with id {set_id}")
    return int(set_id)


def check_members(item_ids: Sequence[str]) -> list[str]:
    """Member item ids: at least one, non-empty strings; repeats dropped, order kept.

    Returns
    -------
    list[str]
        Length k >= 1, unique, in first-occurrence order.

    Raises
    ------
    ValueError
        No ids, a single string instead of a sequence, or an empty / non-string id.
    """
    ids = check_strings("item_ids", item_ids)
    if not ids:
        raise ValueError("a set needs at least one item")
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------- SQL


def read_sets(conn: sqlite3.Connection, set_id: int | None = None) -> list[SetInfo]:
    """Every set (or the one with ``set_id``), ordered by id, with its members in order."""
    where, args = ("WHERE id = ?", (set_id,)) if set_id is not None else ("", ())
    rows = conn.execute(
        "SELECT id, name, color, description, created_at, updated_at FROM sets "
        f"{where} ORDER BY id",
        args,
    ).fetchall()
    members: dict[int, list[str]] = {int(row[0]): [] for row in rows}
    item_where = "WHERE set_id = ?" if set_id is not None else ""
    for sid, item_id in conn.execute(
        f"SELECT set_id, item_id FROM set_items {item_where} ORDER BY set_id, position", args
    ):
        members.setdefault(int(sid), []).append(item_id)
    return [
        SetInfo(
            id=int(sid),
            name=name,
            item_ids=members[int(sid)],
            color=color,
            description=description,
            created_at=created_at,
            updated_at=updated_at,
        )
        for sid, name, color, description, created_at, updated_at in rows
    ]


def read_set(conn: sqlite3.Connection, set_id: int) -> SetInfo:
    """The set ``set_id``; raises ``UnknownSetError`` when there is none."""
    found = read_sets(conn, set_id)
    if not found:
        raise UnknownSetError(f"workspace has no set with id {set_id}")
    return found[0]


def require_set(conn: sqlite3.Connection, set_id: int) -> None:
    """Raise ``UnknownSetError`` unless set ``set_id`` exists."""
    if conn.execute("SELECT 1 FROM sets WHERE id = ?", (set_id,)).fetchone() is None:
        raise UnknownSetError(f"workspace has no set with id {set_id}")


def set_named(conn: sqlite3.Connection, name: str) -> int | None:
    """Id of the set called ``name``, or None."""
    row = conn.execute("SELECT id FROM sets WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def require_free_name(conn: sqlite3.Connection, name: str, set_id: int | None = None) -> None:
    """Raise ``ValueError`` when another set (not ``set_id``) is already called ``name``."""
    existing = set_named(conn, name)
    if existing is not None and existing != set_id:
        raise ValueError(f"a set named {name!r} already exists (id {existing})")


def insert_set(
    conn: sqlite3.Connection, name: str, color: str | None, description: str, now: str
) -> int:
    """Insert a set row (no members yet); returns its new id."""
    cur = conn.execute(
        "INSERT INTO sets(name, color, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (name, color, description, now, now),
    )
    return int(cur.lastrowid or 0)


def write_members(conn: sqlite3.Connection, set_id: int, item_ids: Sequence[str]) -> None:
    """Replace the members of set ``set_id`` with ``item_ids`` (in this order)."""
    conn.execute("DELETE FROM set_items WHERE set_id = ?", (set_id,))
    conn.executemany(
        "INSERT INTO set_items(set_id, position, item_id) VALUES (?, ?, ?)",
        [(set_id, i, item_id) for i, item_id in enumerate(item_ids)],
    )


def touch(conn: sqlite3.Connection, set_id: int, now: str) -> None:
    """Set ``updated_at`` of set ``set_id``."""
    conn.execute("UPDATE sets SET updated_at = ? WHERE id = ?", (now, set_id))


def rename(conn: sqlite3.Connection, set_id: int, name: str, now: str) -> None:
    """Set the name (already checked to be free) and ``updated_at`` of set ``set_id``."""
    conn.execute("UPDATE sets SET name = ?, updated_at = ? WHERE id = ?", (name, now, set_id))


def delete_set(conn: sqlite3.Connection, set_id: int) -> None:
    """Delete set ``set_id`` and its members."""
    conn.execute("DELETE FROM set_items WHERE set_id = ?", (set_id,))
    conn.execute("DELETE FROM sets WHERE id = ?", (set_id,))


def remove_members(conn: sqlite3.Connection, item_ids: set[str], now: str) -> list[str]:
    """Drop ``item_ids`` from every set, renumbering positions; returns the names of sets
    this would leave empty, changing nothing in that case."""
    sets = [info for info in read_sets(conn) if item_ids & set(info.item_ids)]
    emptied = [info.name for info in sets if set(info.item_ids) <= item_ids]
    if emptied:
        return emptied
    for info in sets:
        write_members(conn, info.id, [i for i in info.item_ids if i not in item_ids])
        touch(conn, info.id, now)
    return []
