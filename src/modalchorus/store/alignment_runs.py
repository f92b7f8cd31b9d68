"""Catalog rows of intents, alignment runs, their weight files and the active run.

Pure SQL helpers used by :class:`~modalchorus.store.workspace.Workspace` inside its read
snapshots and write transactions; validation of what an intent *means* lives in
:mod:`modalchorus.align.intents`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from modalchorus.store.errors import UnknownIntentError, UnknownRunError
from modalchorus.store.projections import check_model_files, to_json
from modalchorus.store.records import IntentInfo, RunInfo
from modalchorus.store.schema import is_row_id

_RUN_COLUMNS = (
    "id, parent_run_id, base_encoder_id, parent_encoder_id, encoder_id, scope, intents, "
    "params, metrics_before, metrics_after, moved, seconds, created_at"
)

#: Largest intent spec accepted, in bytes of JSON.
MAX_INTENT_BYTES = 1_000_000


def intent_json(spec: Mapping[str, Any]) -> str:
    """Serialise an intent spec (a JSON object), rejecting non-JSON values and huge specs."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"an intent must be a JSON object, got {type(spec).__name__}")
    text = to_json("intent", spec)
    size = len(text.encode("utf-8"))
    if size > MAX_INTENT_BYTES:
        raise ValueError(
            f"the intent is {size:,} bytes of JSON, over the {MAX_INTENT_BYTES:,}-byte limit: "
            "save large selections as a set and name the set instead of listing its items"
        )
    return text


def read_intents(conn: sqlite3.Connection) -> list[IntentInfo]:
    """Every stored intent, by id."""
    rows = conn.execute("SELECT id, spec, created_at FROM intents ORDER BY id").fetchall()
    return [IntentInfo(int(i), json.loads(spec), created) for i, spec, created in rows]


def read_intent(conn: sqlite3.Connection, intent_id: int) -> IntentInfo:
    """One stored intent; raises :class:`UnknownIntentError`."""
    query = "SELECT id, spec, created_at FROM intents WHERE id = ?"
    row = conn.execute(query, (intent_id,)).fetchone() if is_row_id(intent_id) else None
    if row is None:
        raise UnknownIntentError(f"workspace has no intent with id {intent_id}")
    return IntentInfo(int(row[0]), json.loads(row[1]), row[2])


def find_intent(conn: sqlite3.Connection, spec: Mapping[str, Any]) -> int | None:
    """Id of a stored intent whose spec equals ``spec`` (as parsed JSON), else None."""
    return next((info.id for info in read_intents(conn) if info.spec == spec), None)


def intents_naming(conn: sqlite3.Connection, item_ids: set[str]) -> list[int]:
    """Ids of stored intents whose spec names one of ``item_ids`` directly (as the point or
    in a list of items; set references are not followed)."""
    named = []
    for info in read_intents(conn):
        values = [v for v in info.spec.values() if isinstance(v, str | list)]
        flat = {x for v in values for x in ([v] if isinstance(v, str) else v)}
        if flat & item_ids:
            named.append(info.id)
    return named


#: Intent fields that hold a set reference (a set id, a set name or a list of item ids).
SET_REF_FIELDS = ("target", "avoid", "a", "b")


def _names_set(ref: object, set_id: int, name: str) -> bool:
    if isinstance(ref, bool):
        return False
    return ref == set_id if isinstance(ref, int) else ref == name


def intents_naming_set(conn: sqlite3.Connection, set_id: int, name: str) -> list[int]:
    """Ids of stored intents that refer to the set ``set_id`` (by id or by ``name``)."""
    return [
        info.id
        for info in read_intents(conn)
        if any(_names_set(info.spec.get(f), set_id, name) for f in SET_REF_FIELDS)
    ]


def rename_set_references(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Make stored intents that refer to a set by its name ``old`` use ``new``."""
    for info in read_intents(conn):
        refs = {f: new for f in SET_REF_FIELDS if info.spec.get(f) == old}
        if refs:
            spec = intent_json({**info.spec, **refs})
            conn.execute("UPDATE intents SET spec = ? WHERE id = ?", (spec, info.id))


def active_run_id(conn: sqlite3.Connection, base_encoder_id: str) -> int | None:
    """Id of the run whose version is current for a family, or None (the base)."""
    row = conn.execute(
        "SELECT run_id FROM alignment_active WHERE base_encoder_id = ?", (base_encoder_id,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def set_active_run(conn: sqlite3.Connection, base_encoder_id: str, run_id: int | None) -> None:
    """Make ``run_id``'s version (None: the base encoder's) the family's current one."""
    conn.execute(
        "INSERT INTO alignment_active(base_encoder_id, run_id) VALUES (?, ?) "
        "ON CONFLICT(base_encoder_id) DO UPDATE SET run_id = excluded.run_id",
        (base_encoder_id, run_id),
    )


def base_of(conn: sqlite3.Connection, encoder_id: str) -> str:
    """The family (base encoder id) of an embedding version id."""
    row = conn.execute(
        "SELECT base_encoder_id FROM alignment_runs WHERE encoder_id = ?", (encoder_id,)
    ).fetchone()
    return encoder_id if row is None else row[0]


def _run(row: tuple, active: int | None) -> RunInfo:
    (run_id, parent, base, parent_enc, enc, scope, intents, params, before, after, moved) = row[:11]
    return RunInfo(
        id=int(run_id),
        parent_run_id=None if parent is None else int(parent),
        base_encoder_id=base,
        parent_encoder_id=parent_enc,
        encoder_id=enc,
        scope=scope,
        intents=json.loads(intents),
        params=json.loads(params),
        metrics_before=json.loads(before),
        metrics_after=json.loads(after),
        moved=json.loads(moved),
        seconds=float(row[11]),
        created_at=row[12],
        active=active == int(run_id),
    )


def read_runs(conn: sqlite3.Connection, base_encoder_id: str | None = None) -> list[RunInfo]:
    """Recorded runs, oldest first, optionally of one family."""
    sql = f"SELECT {_RUN_COLUMNS} FROM alignment_runs"
    args: tuple = ()
    if base_encoder_id is not None:
        sql, args = sql + " WHERE base_encoder_id = ?", (base_encoder_id,)
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    active = {base: active_run_id(conn, base) for base in {row[2] for row in rows}}
    return [_run(row, active[row[2]]) for row in rows]


def read_run(conn: sqlite3.Connection, run_id: int) -> RunInfo:
    """One recorded run; raises :class:`UnknownRunError`."""
    query = f"SELECT {_RUN_COLUMNS} FROM alignment_runs WHERE id = ?"
    row = conn.execute(query, (run_id,)).fetchone() if is_row_id(run_id) else None
    if row is None:
        raise UnknownRunError(f"workspace has no alignment run with id {run_id}")
    return _run(row, active_run_id(conn, row[2]))


def newest_child(conn: sqlite3.Connection, base_encoder_id: str, run_id: int | None) -> int | None:
    """The most recent run tuned from ``run_id``'s version (None: from the base), if any."""
    row = conn.execute(
        "SELECT id FROM alignment_runs WHERE base_encoder_id = ? AND parent_run_id IS ? "
        "ORDER BY id DESC LIMIT 1",
        (base_encoder_id, run_id),
    ).fetchone()
    return None if row is None else int(row[0])


def insert_run(
    conn: sqlite3.Connection, record: Mapping[str, Any], files: Mapping[str, bytes], now: str
) -> int:
    """Insert a run row and its weight files; returns the new run id."""
    files = check_model_files(files)
    cursor = conn.execute(
        "INSERT INTO alignment_runs(parent_run_id, base_encoder_id, parent_encoder_id, "
        "encoder_id, scope, intents, params, metrics_before, metrics_after, moved, seconds, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record["parent_run_id"],
            record["base_encoder_id"],
            record["parent_encoder_id"],
            record["encoder_id"],
            record["scope"],
            json.dumps(record["intents"], ensure_ascii=False, allow_nan=False),
            to_json("params", record["params"]),
            to_json("metrics_before", record["metrics_before"]),
            to_json("metrics_after", record["metrics_after"]),
            json.dumps(record["moved"], allow_nan=False),
            float(record["seconds"]),
            now,
        ),
    )
    run_id = int(cursor.lastrowid)
    conn.executemany(
        "INSERT INTO alignment_run_files(run_id, filename, data) VALUES (?, ?, ?)",
        [(run_id, name, data) for name, data in files.items()],
    )
    return run_id


def read_run_files(conn: sqlite3.Connection, run_id: int) -> dict[str, bytes]:
    """``{filename: bytes}`` of a run's weights."""
    read_run(conn, run_id)
    rows = conn.execute(
        "SELECT filename, data FROM alignment_run_files WHERE run_id = ? ORDER BY filename",
        (run_id,),
    ).fetchall()
    return {name: bytes(data) for name, data in rows}
