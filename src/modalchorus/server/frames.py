"""A small binary frame for per-point columns (coordinates, kinds, labels, axis values).

Layout (all integers little-endian)::

    0       4 bytes   magic b"MCF1"
    4       uint32    H, length of the JSON header in bytes (padded with spaces)
    8       H bytes   JSON header, UTF-8: {"n": n, "columns": [...], "meta": {...}}
    8 + H   ...       column buffers, each starting at a multiple of 8

Each header column is ``{"name", "dtype", "offset", "nbytes"}`` with ``offset`` counted
from the start of the frame. ``dtype`` is a typed-array type: ``float32``, ``int16``,
``int32``, ``uint8``, ``uint32``; or ``utf8``: ``n + 1`` uint32 byte offsets followed by the
concatenated UTF-8 strings (string ``i`` is ``data[off[i]:off[i + 1]]``). The front end reads
a column as a zero-copy ``Float32Array`` (etc.) view of the response body.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAGIC = b"MCF1"
MEDIA_TYPE = "application/vnd.modalchorus.frame"
_ALIGN = 8
_DTYPES = {
    "float32": np.dtype("<f4"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("u1"),
    "uint32": np.dtype("<u4"),
}


def _utf8_column(strings: Sequence[str]) -> bytes:
    """``n + 1`` uint32 offsets then the concatenated UTF-8 bytes of ``strings``."""
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype="<u4")
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return offsets.tobytes() + b"".join(encoded)


def _pad(n: int) -> int:
    return -n % _ALIGN


def encode_frame(
    columns: Mapping[str, np.ndarray | Sequence[str]],
    dtypes: Mapping[str, str],
    meta: Mapping[str, Any] | None = None,
) -> bytes:
    """Pack equally long columns into one frame.

    Parameters
    ----------
    columns : Mapping[str, numpy.ndarray | Sequence[str]]
        Name -> values, each of length n (numeric arrays, or strings for ``utf8``).
    dtypes : Mapping[str, str]
        Name -> frame dtype (see the module docstring), one per column.
    meta : Mapping[str, Any] | None
        JSON-serialisable extras for the header (e.g. label names).

    Returns
    -------
    bytes
        The frame.

    Raises
    ------
    ValueError
        Columns of different lengths, or an unknown dtype.
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"frame columns differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    buffers: list[tuple[str, str, bytes]] = []
    for name, values in columns.items():
        dtype = dtypes[name]
        if dtype == "utf8":
            data = _utf8_column(list(values))  # type: ignore[arg-type]
        elif dtype in _DTYPES:
            data = np.ascontiguousarray(values, dtype=_DTYPES[dtype]).tobytes()
        else:
            raise ValueError(f"unknown frame dtype {dtype!r} for column {name!r}")
        buffers.append((name, dtype, data))
    # The header's own length changes the offsets: lay out with a placeholder, then fix.
    header_len = 0
    while True:
        offset = 8 + header_len
        specs = []
        for name, dtype, data in buffers:
            specs.append({"name": name, "dtype": dtype, "offset": offset, "nbytes": len(data)})
            offset += len(data) + _pad(len(data))
        header = json.dumps(
            {"n": n, "columns": specs, "meta": dict(meta or {})}, separators=(",", ":")
        ).encode("utf-8")
        needed = len(header) + _pad(8 + len(header))
        if needed <= header_len:
            break
        header_len = needed
    parts = [MAGIC, struct.pack("<I", header_len), header.ljust(header_len, b" ")]
    for _, _, data in buffers:
        parts += [data, b"\x00" * _pad(len(data))]
    return b"".join(parts)


def decode_frame(frame: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray | list[str]]]:
    """Read a frame back (used by tests and benchmarks).

    Returns
    -------
    header : dict
        ``n``, ``columns`` and ``meta``.
    columns : dict
        Name -> NumPy array, or list of str for ``utf8`` columns.
    """
    if frame[:4] != MAGIC:
        raise ValueError("not a ModalChorus frame (bad magic)")
    (header_len,) = struct.unpack("<I", frame[4:8])
    header = json.loads(frame[8 : 8 + header_len])
    n = header["n"]
    out: dict[str, np.ndarray | list[str]] = {}
    for spec in header["columns"]:
        raw = frame[spec["offset"] : spec["offset"] + spec["nbytes"]]
        if spec["dtype"] == "utf8":
            offsets = np.frombuffer(raw[: 4 * (n + 1)], dtype="<u4")
            data = raw[4 * (n + 1) :]
            out[spec["name"]] = [
                data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)
            ]
        else:
            out[spec["name"]] = np.frombuffer(raw, dtype=_DTYPES[spec["dtype"]])
    return header, out
