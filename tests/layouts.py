"""Workspaces holding a stored layout of random vectors, for tests of what reads layouts
(export, the CSV download): only the reading is under test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modalchorus.data import load_dataset
from modalchorus.store import Workspace


def stored_layout(root: Path, manifest: Path) -> Path:
    """A workspace at ``root`` holding ``manifest`` as dataset 'mine' with a stored mfm
    layout (random vectors and coordinates: only the export is under test)."""
    ws = Workspace.create(root)
    ws.add_dataset(load_dataset(str(manifest), name="mine", caption_column="caption"))
    items = ws.items()
    vectors = np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32)
    ws.put_embeddings("pocket@t", items["id"], items["content_hash"], vectors)
    coords = np.random.default_rng(1).normal(size=(len(items), 2)).astype(np.float32)
    ws.put_projection(
        "mfm:mine:pocket@t", "pocket@t", items["id"], coords, method="mfm", params={}, metrics={}
    )
    ws.close()
    return root


#: Captions a spreadsheet would run as formulas (the loaders strip tabs and line breaks).
FORMULAS = ("=1+2", "+SUM(A1:A9)", "-2+3", '@HYPERLINK("http://x","y")')


def formula_manifest(small_manifest: Path) -> Path:
    """``small_manifest`` with the first caption of four images replaced by FORMULAS."""
    rows = [json.loads(line) for line in small_manifest.read_text().splitlines()]
    for row, formula in zip(rows[::2], FORMULAS, strict=False):
        row["caption"] = formula
    path = small_manifest.with_name("formulas.jsonl")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
