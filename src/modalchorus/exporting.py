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

from modalchorus.projecting import projection_dataset, projection_name

if TYPE_CHECKING:
    from modalchorus.store import Workspace

#: File suffixes :func:`write_table` understands.
EXPORT_FORMATS = (".csv", ".parquet", ".jsonl")

#: Item columns written next to the coordinates, in this order.
ITEM_COLUMNS = ("id", "kind", "dataset", "label", "text", "image_id", "source")


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
        Nothing matches, or several datasets do and none was named; the message lists
        what is stored.
    """
    stored = {p.name: p for p in workspace.projections(encoder_id) if p.method == method}
    if dataset is not None:
        workspace.dataset(dataset)  # UnknownDatasetError names an unknown dataset
        name = projection_name(method, dataset, encoder_id)
        if name in stored:
            return name
        raise ValueError(
            f"no stored {method} projection of dataset {dataset!r} for {encoder_id}: "
            f"run `modalchorus project --dataset {dataset} --method {method}` first"
        )
    if len(stored) == 1:
        return next(iter(stored))
    if not stored:
        raise ValueError(
            f"no stored {method} projection for {encoder_id}: run `modalchorus project` first"
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


def write_table(table: pd.DataFrame, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``table`` in the format ``path``'s suffix names (:data:`EXPORT_FORMATS`).

    The file appears whole or not at all: it is written next to ``path`` and then moved.

    Raises
    ------
    ValueError
        An unknown suffix.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(
            f"cannot write {path.name!r}: use a name ending in {', '.join(EXPORT_FORMATS)}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600: give the mode open() would
    try:
        if suffix == ".csv":
            table.to_csv(tmp, index=False)
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
