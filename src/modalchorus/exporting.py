"""Stored projections as plain tables (CSV, Parquet, JSON Lines) for other tools."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modalchorus.projecting import (
    METHODS,
    check_joint_sizes,
    projection_dataset,
    projection_name,
    require_datasets,
)

if TYPE_CHECKING:
    from modalchorus.store import Workspace

#: File suffixes :func:`write_table` understands.
EXPORT_FORMATS = (".csv", ".parquet", ".jsonl")

#: Item columns written next to the coordinates, in this order.
ITEM_COLUMNS = ("id", "kind", "dataset", "label", "text", "image_id", "source")

#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _read_umask() -> int:
    """The file-creation mask (reading it means setting it; set straight back). Read once,
    at import: the mask is process-wide, so it is not toggled while threads write files."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def find_projection(workspace: Workspace, encoder_id: str, method: str, dataset: str | None) -> str:
    """Name of the stored ``method`` projection of ``dataset`` under ``encoder_id``.

    ``dataset=None`` works when exactly one dataset has such a projection.

    Raises
    ------
    ValueError
        An unknown method, nothing matches, or several datasets do and none was named;
        the message lists what is stored.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")
    stored = {p.name: p for p in workspace.projections(encoder_id) if p.method == method}
    if dataset is not None:
        info = workspace.dataset(dataset)  # UnknownDatasetError names an unknown dataset
        name = projection_name(method, dataset, encoder_id)
        if name in stored:
            return name
        check_joint_sizes(dataset, info.n_images, info.n_texts)  # no map can be made
        raise ValueError(
            f"no stored {method} projection of dataset {dataset!r} for {encoder_id}: run "
            f"`modalchorus project {workspace.path} --dataset {dataset} --method {method}` first"
        )
    if len(stored) == 1:
        return next(iter(stored))
    if not stored:
        require_datasets(workspace)
        raise ValueError(
            f"no stored {method} projection for {encoder_id}: run "
            f"`modalchorus project {workspace.path} --method {method}` first"
        )
    datasets = sorted(projection_dataset(name, method, encoder_id) for name in stored)
    raise ValueError(f"several datasets have a {method} projection; choose one of {datasets}")


def layout_table(items: pd.DataFrame, ids: Sequence[str], coords: np.ndarray) -> pd.DataFrame:
    """Coordinates joined with item metadata, one row per item, in ``ids`` order.

    Parameters
    ----------
    items : pandas.DataFrame
        :meth:`Workspace.items <modalchorus.store.Workspace.items>`.
    ids : sequence of str
        Length n.
    coords : numpy.ndarray, shape (n, 2)
        Row ``i`` is the position of ``ids[i]``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ITEM_COLUMNS` then ``x``, ``y``; ids that are not in ``items``
        (removed since the fit) are left out.
    """
    layout = pd.DataFrame({"id": list(ids), "x": coords[:, 0], "y": coords[:, 1]})
    return layout.merge(items[list(ITEM_COLUMNS)], on="id", how="inner", sort=False)[
        [*ITEM_COLUMNS, "x", "y"]
    ]


def projection_table(workspace: Workspace, name: str) -> pd.DataFrame:
    """Stored projection ``name`` as a :func:`layout_table`."""
    ids, coords = workspace.get_projection(name)
    return layout_table(workspace.items(), ids, coords)


def _shared_folder(paths: list[str]) -> str | None:
    """The deepest folder holding every one of ``paths`` (normalised absolute paths), or
    None when that is only a file system root or they are on different drives."""
    try:
        folder = os.path.commonpath({os.path.dirname(path) for path in paths})
    except ValueError:  # different drives
        return None
    return None if os.path.dirname(folder) == folder else folder


def relative_sources(items: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``items`` whose ``source`` column shows no folder of this machine, for
    tables served over HTTP (a server bound to all interfaces serves remote users).

    The workspace does not record the folder a dataset was loaded from, so a dataset's
    folder is taken to be the deepest folder holding all of its files: each absolute
    source becomes its path below that folder, with ``/`` separators (``val2017/1.jpg``;
    ``data_batch_1#17`` for record 17 of a CIFAR batch file; a one-file dataset: the file
    name). That is how a user holding the same dataset finds the file, and it is the same
    whichever machine or folder the dataset was loaded from. When a dataset's files share
    no folder but a file system root (a manifest of files from unrelated places), each
    source is its file name only. Sources that are not absolute paths (``""`` for texts)
    are kept.

    Parameters
    ----------
    items : pandas.DataFrame
        With ``dataset`` and ``source`` columns: every item of each dataset the result is
        used for (the folder is found from all of them).

    Returns
    -------
    pandas.DataFrame
        Same shape, columns and index.
    """
    sources = items["source"].tolist()
    by_dataset: dict[str, list[int]] = {}
    for row, (dataset, source) in enumerate(zip(items["dataset"], sources, strict=True)):
        if isinstance(source, str) and os.path.isabs(source):
            sources[row] = os.path.normpath(source)
            by_dataset.setdefault(dataset, []).append(row)
    for rows in by_dataset.values():
        folder = _shared_folder([sources[row] for row in rows])
        # Normalised paths all below ``folder``: what follows it and a separator.
        start = len(os.path.join(folder, "")) if folder is not None else None
        for row in rows:
            path = sources[row]
            shown = os.path.basename(path) if start is None else path[start:]
            sources[row] = shown if os.sep == "/" else shown.replace(os.sep, "/")
    out = items.copy()
    out["source"] = pd.Series(sources, index=items.index, dtype=items["source"].dtype)
    return out


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells a spreadsheet shows as text, for CSV output.

    A text starting with one of :data:`FORMULA_STARTS` (``=1+2``, ``@SUM(A1)``) would run as
    a formula when the CSV is opened in Excel or LibreOffice; it gets a leading ``'`` (the
    OWASP advice), which spreadsheets read as "this cell is text". Other cells, and
    numbers, are unchanged. Parquet and JSON Lines keep the raw texts.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Same shape, columns and index.
    """

    def cell(value: object) -> object:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(cell)
    return safe


def check_export_path(
    path: str | os.PathLike[str], overwrite: bool = False, hint: str = "overwrite=True"
) -> Path:
    """Refuse a file :func:`write_table` could not (or must not) write, before any work.

    Parameters
    ----------
    path : str or os.PathLike
    overwrite : bool
        Whether an existing regular file may be replaced.
    hint : str
        What replaces an existing file, for the message (the CLI says ``--force``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        An unknown suffix, a folder, or a symbolic link: replacing a link would swap it
        for a regular file and leave the file it points at as it was.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        Its folder does not exist.
    """
    path = Path(path)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise ValueError(
            f"cannot write {path.name!r}: use a name ending in {', '.join(EXPORT_FORMATS)}"
        )
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; give the path of a regular file")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass {hint} to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    return path


def write_table(table: pd.DataFrame, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``table`` in the format ``path``'s suffix names (:data:`EXPORT_FORMATS`).

    The file appears whole or not at all: it is written next to ``path`` and then moved.
    CSV cells go through :func:`csv_safe`.

    Raises
    ------
    ValueError
        An unknown suffix, or ``path`` is a folder or a symbolic link.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = check_export_path(path, overwrite)
    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600: give the mode open() would
    try:
        if suffix == ".csv":
            csv_safe(table).to_csv(tmp, index=False)
        elif suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:  # json.dumps: pandas' writer escapes every "/" of the ids and paths
            with open(tmp, "w", encoding="utf-8") as f:
                for row in table.astype(object).where(table.notna(), None).to_dict("records"):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
