"""Row readers for manifest files: CSV, JSONL and Parquet (not public API).

Text formats are read as raw bytes and decoded with ``surrogateescape``, so a row
holding invalid UTF-8 never aborts the whole file: the bad bytes survive as lone
surrogates, and the manifest loader reports exactly the row and column that hold
them. Parquet string columns are read as binary for the same reason.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_SUFFIXES", "ManifestRow", "ManifestTable", "read_manifest_table"]

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ManifestRow:
    """One data row of a manifest.

    Attributes
    ----------
    number : int
        1-based data-row number (a CSV header is not counted, nor are blank lines).
    line : int | None
        1-based line of the file where the row starts (text formats only).
    values : dict[str, Any]
        Column name to raw value: ``str`` (possibly holding lone surrogates for
        invalid UTF-8 bytes), ``bytes`` (Parquet strings), numbers, lists or ``None``.
    """

    number: int
    line: int | None
    values: dict[str, Any]

    @property
    def where(self) -> str:
        """Human-readable position, e.g. ``"row 3 (line 4)"``."""
        return f"row {self.number}" + (f" (line {self.line})" if self.line is not None else "")


@dataclass
class ManifestTable:
    """Parsed manifest: its columns, its rows, and rows that could not be parsed."""

    columns: list[str]
    rows: list[ManifestRow] = field(default_factory=list)
    unparsable: list[tuple[ManifestRow, str]] = field(default_factory=list)


def _read_csv(path: Path, wanted: list[str]) -> ManifestTable:
    text = path.read_bytes().removeprefix(_UTF8_BOM).decode("utf-8", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"manifest {path} is empty (no header row)") from None
    table = ManifestTable(columns=[name.strip() for name in header])
    number = 0
    while True:
        start_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            table.unparsable.append((ManifestRow(number, start_line, {}), f"bad CSV ({exc})"))
            continue
        if not fields:
            continue
        number += 1
        values = dict(zip(table.columns, fields, strict=False))
        table.rows.append(ManifestRow(number, start_line, values))
    return table


def _read_jsonl(path: Path, wanted: list[str]) -> ManifestTable:
    raw_lines = path.read_bytes().removeprefix(_UTF8_BOM).split(b"\n")
    table = ManifestTable(columns=[])
    seen: dict[str, None] = {}
    number = 0
    for line_number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        number += 1
        text = raw.decode("utf-8", "surrogateescape")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            row = ManifestRow(number, line_number, {})
            table.unparsable.append((row, f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(record, dict):
            row = ManifestRow(number, line_number, {})
            table.unparsable.append((row, f"expected a JSON object, got {type(record).__name__}"))
            continue
        seen.update(dict.fromkeys(record))
        table.rows.append(ManifestRow(number, line_number, record))
    table.columns = list(seen)
    return table


def _read_parquet(path: Path, wanted: list[str]) -> ManifestTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        columns = list(pq.read_schema(path).names)
        present = [name for name in wanted if name in columns]
        arrow_table = pq.read_table(path, columns=present)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"cannot read Parquet manifest {path}: {exc}") from exc
    data: dict[str, list[Any]] = {}
    for name in present:
        column = arrow_table.column(name)
        column = column.cast(_binary_type(column.type, pa))
        data[name] = column.to_pylist()
    table = ManifestTable(columns=columns)
    for index in range(arrow_table.num_rows):
        values = {name: data[name][index] for name in present}
        table.rows.append(ManifestRow(index + 1, None, values))
    return table


def _binary_type(arrow_type: Any, pa: Any) -> Any:
    """Same type with strings replaced by binary, so decoding stays in our hands."""
    if pa.types.is_string(arrow_type):
        return pa.binary()
    if pa.types.is_large_string(arrow_type):
        return pa.large_binary()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = _binary_type(arrow_type.value_type, pa)
        return pa.list_(inner) if pa.types.is_list(arrow_type) else pa.large_list(inner)
    return arrow_type


_READERS = {
    ".csv": _read_csv,
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}

#: Manifest file suffixes understood by :func:`read_manifest_table`.
MANIFEST_SUFFIXES: frozenset[str] = frozenset(_READERS)


def read_manifest_table(path: Path, wanted: list[str]) -> ManifestTable:
    """Parse a manifest file chosen by suffix.

    Parameters
    ----------
    path : pathlib.Path
        ``.csv``, ``.jsonl`` / ``.ndjson`` or ``.parquet`` / ``.pq`` file.
    wanted : list[str]
        Columns the caller will use (Parquet reads only these).

    Returns
    -------
    ManifestTable

    Raises
    ------
    ValueError
        If the suffix is not supported or the file cannot be parsed at all.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"unsupported manifest type {path.suffix!r} for {path}; "
            f"expected one of {', '.join(sorted(_READERS))}"
        )
    return reader(path, wanted)
