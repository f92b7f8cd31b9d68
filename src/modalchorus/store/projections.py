"""Projections: validation of ``put_projection`` calls and their rows in Lance.

A projection is a 2-D layout of items computed under one encoder. It is stored as

* a row of the catalog table ``projections``: metadata, JSON ``params`` / ``metrics``, the
  names of its model files, and ``key`` (sha256 hex of the name);
* one row per item in the Lance table ``projection_coords`` (``ordinal`` keeps the order
  the caller gave);
* one row per model file (e.g. a fitted MFM's ``mfm.safetensors`` + ``mfm.json``) in the
  Lance table ``projection_files``.

Both Lance tables are shared by all projections and keyed by ``key``. Writes run inside
the workspace transaction (:mod:`modalchorus.store.transaction`): replacing or removing a
projection deletes its old rows and adds the new ones in new, uncommitted Lance versions,
which become visible together with the catalog row at the single SQLite commit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from modalchorus.store.embeddings import check_strings, finite_float32, first_duplicate
from modalchorus.store.records import ProjectionInfo
from modalchorus.store.schema import PROJECTION_COORDS_SCHEMA, PROJECTION_FILES_SCHEMA

#: Longest projection name, and longest model file name, in characters.
MAX_NAME_LENGTH = 255

_FORBIDDEN_FILENAME_CHARS = ("/", "\\", "\x00")


@dataclass(frozen=True)
class ProjectionBatch:
    """A validated ``put_projection`` call.

    Attributes
    ----------
    name, encoder_id, method : str
        Non-empty.
    item_ids : list[str]
        Length n >= 1, unique.
    coords : np.ndarray
        Shape (n, 2), float32, C-contiguous, all finite.
    params_json, metrics_json : str
        The params and metrics as JSON objects.
    model_files : dict[str, bytes]
        ``{file name: content}``, possibly empty.
    """

    name: str
    encoder_id: str
    method: str
    item_ids: list[str]
    coords: np.ndarray
    params_json: str
    metrics_json: str
    model_files: dict[str, bytes]


def check_projection_name(name: str) -> str:
    """Validate a projection name: non-empty, no surrounding whitespace, <= 255 characters.

    Raises
    ------
    ValueError
        Naming the problem.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"projection name must be a non-empty string, got {name!r}")
    if name != name.strip():
        raise ValueError(f"projection name must not start or end with whitespace, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"projection name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}"
        )
    return name


def _check_text(what: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def validate_projection(
    name: str,
    encoder_id: str,
    item_ids: Sequence[str],
    coords: np.ndarray,
    *,
    method: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    model_files: Mapping[str, bytes] | None,
) -> ProjectionBatch:
    """Check a ``put_projection`` call before anything is written.

    Parameters
    ----------
    name : str
        See :func:`check_projection_name`.
    encoder_id, method : str
        Non-empty strings.
    item_ids : Sequence[str]
        Length n >= 1, unique, non-empty strings.
    coords : np.ndarray
        Shape (n, 2), floating point, finite; cast to float32.
    params, metrics : Mapping[str, Any]
        JSON objects (see :func:`to_json`).
    model_files : Mapping[str, bytes] | None
        See :func:`check_model_files`.

    Returns
    -------
    ProjectionBatch

    Raises
    ------
    ValueError
        Naming the problem: bad name, ids, shape, dtype, NaN/inf, params, metrics or files.
    """
    check_projection_name(name)
    _check_text("encoder_id", encoder_id)
    _check_text("method", method)
    ids = check_strings("item_ids", item_ids)
    try:
        array = np.asarray(coords)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"coords must be a 2-D array with shape (n, 2): {exc}") from None
    if array.dtype.kind != "f":
        raise ValueError(f"coords must be a floating-point array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"coords must have shape (n, 2), got shape {array.shape}")
    if len(ids) != array.shape[0]:
        raise ValueError(f"length mismatch: {len(ids)} item_ids, {array.shape[0]} coords rows")
    if not ids:
        raise ValueError("a projection needs at least one item")
    if len(set(ids)) != len(ids):
        dup = first_duplicate(ids)
        raise ValueError(f"item_ids must be unique; {dup!r} appears more than once")
    array = finite_float32("coords", array, ids)
    return ProjectionBatch(
        name=name,
        encoder_id=encoder_id,
        method=method,
        item_ids=ids,
        coords=array,
        params_json=to_json("params", params),
        metrics_json=to_json("metrics", metrics),
        model_files=check_model_files(model_files),
    )


def to_json(what: str, value: Mapping[str, Any]) -> str:
    """A dict as strict JSON text (what is stored is exactly what reads return).

    Accepted values: None, bool, int, finite float, str, lists/tuples (stored as lists),
    dicts with string keys, and NumPy scalars / arrays (stored as numbers / lists).

    Parameters
    ----------
    what : str
        Argument name, for messages.
    value : Mapping[str, Any]
        The object.

    Returns
    -------
    str
        JSON text of an object.

    Raises
    ------
    ValueError
        Naming the offending entry, e.g. ``metrics['knn'][5]: dict keys must be strings``.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a dict, got {type(value).__name__}")
    return json.dumps(_plain(value, what), ensure_ascii=False, allow_nan=False)


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON-compatible Python objects, or a ValueError naming ``where``."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; JSON allows finite numbers only")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: dict keys must be strings, got {key!r}")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"{where} is not JSON-serialisable: {type(value).__name__} {value!r:.80}")


def check_model_files(files: Mapping[str, bytes] | None) -> dict[str, bytes]:
    """Validate model files: plain file names (no path separators) mapped to bytes.

    Returns
    -------
    dict[str, bytes]
        A copy, empty for None.

    Raises
    ------
    ValueError
        A name that is empty, ``.``/``..``, longer than 255 characters or contains ``/``,
        ``\\`` or NUL; or content that is not bytes-like.
    """
    if files is None:
        return {}
    if not isinstance(files, Mapping):
        raise ValueError(f"model_files must be a dict of name -> bytes, got {type(files).__name__}")
    out = {}
    for name, data in files.items():
        if (
            not isinstance(name, str)
            or name in ("", ".", "..")
            or len(name) > MAX_NAME_LENGTH
            or any(c in name for c in _FORBIDDEN_FILENAME_CHARS)
        ):
            raise ValueError(
                f"model file name {name!r} must be a plain file name of 1-{MAX_NAME_LENGTH} "
                "characters without '/', '\\' or NUL"
            )
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError(f"model file {name!r} must be bytes, got {type(data).__name__}")
        out[name] = bytes(data)
    return out


# ---------------------------------------------------------------- Lance rows


def _where(key: str) -> str:
    """Lance filter selecting the rows of projection ``key`` (hex: nothing to escape)."""
    if not key or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"internal error: bad projection key {key!r}")
    return f"projection = '{key}'"


def coords_rows(key: str, batch: ProjectionBatch) -> pa.Table:
    """Rows of ``projection_coords`` for a validated projection.

    Returns
    -------
    pa.Table
        n rows of ``PROJECTION_COORDS_SCHEMA``.
    """
    n = len(batch.item_ids)
    return pa.Table.from_arrays(
        [
            pa.array([key] * n, pa.string()),
            pa.array(np.arange(n, dtype=np.int64)),
            pa.array(batch.item_ids, pa.string()),
            pa.array(batch.coords[:, 0]),
            pa.array(batch.coords[:, 1]),
        ],
        schema=PROJECTION_COORDS_SCHEMA,
    )


def files_rows(key: str, files: Mapping[str, bytes]) -> pa.Table:
    """Rows of ``projection_files`` (one per file, sorted by name)."""
    names = sorted(files)
    return pa.Table.from_arrays(
        [
            pa.array([key] * len(names), pa.string()),
            pa.array(names, pa.string()),
            pa.array([files[n] for n in names], pa.large_binary()),
        ],
        schema=PROJECTION_FILES_SCHEMA,
    )


def delete_rows(handle: Any, key: str) -> None:
    """Delete projection ``key``'s rows from a writable projection table handle."""
    handle.delete(_where(key))


def _select(handle: Any, key: str, columns: list[str]) -> pa.Table:
    return handle.search().where(_where(key)).select(columns).limit(None).to_arrow()


def read_coords(handle: Any, key: str) -> tuple[list[str], np.ndarray]:
    """A projection's item ids and coordinates from a ``projection_coords`` handle.

    Returns
    -------
    ids : list[str]
        Length n, in the order they were stored.
    coords : np.ndarray
        Shape (n, 2), float32, C-contiguous and writable; row ``i`` belongs to ``ids[i]``.
    """
    table = _select(handle, key, ["ordinal", "item_id", "x", "y"]).sort_by("ordinal")
    coords = np.empty((table.num_rows, 2), dtype=np.float32)
    coords[:, 0] = table["x"].to_numpy()
    coords[:, 1] = table["y"].to_numpy()
    return table["item_id"].to_pylist(), coords


def read_files(handle: Any, key: str) -> dict[str, bytes]:
    """A projection's model files ``{name: content}`` from a ``projection_files`` handle."""
    table = _select(handle, key, ["filename", "data"])
    return dict(zip(table["filename"].to_pylist(), table["data"].to_pylist(), strict=True))


# ---------------------------------------------------------------- catalog rows

#: Columns of the ``projections`` catalog table that :func:`projection_info` reads.
INFO_COLUMNS = (
    "name, encoder_id, method, params, metrics, n_items, model_files, created_at, updated_at"
)


def projection_info(row: Sequence[Any]) -> ProjectionInfo:
    """A ``projections`` catalog row (``INFO_COLUMNS``) as a :class:`ProjectionInfo`."""
    name, encoder_id, method, params, metrics, n_items, files, created_at, updated_at = row
    return ProjectionInfo(
        name=name,
        encoder_id=encoder_id,
        method=method,
        params=json.loads(params),
        metrics=json.loads(metrics),
        n_items=int(n_items),
        model_files=tuple(json.loads(files)),
        created_at=created_at,
        updated_at=updated_at,
    )
