"""``GET /api/projection/csv`` from a real server: cells never run as spreadsheet formulas."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from browser.support import served_client

from modalchorus.data import load_manifest
from modalchorus.store import Workspace

#: Captions a spreadsheet would run as formulas (the loaders strip tabs and line breaks).
FORMULAS = ("=1+2", "+SUM(A1:A9)", "-2+3", '@HYPERLINK("http://x","y")')


def test_projection_csv_quotes_formulas_and_the_stored_texts_stay_raw(
    tmp_path: Path, small_manifest: Path
) -> None:
    rows = [json.loads(line) for line in small_manifest.read_text().splitlines()]
    for row, formula in zip(rows[::2], FORMULAS, strict=False):
        row["caption"] = formula
    manifest = tmp_path / "formulas.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    ws = Workspace.create(tmp_path / "ws")
    ws.add_dataset(load_manifest(manifest, caption_column="caption", name="mine"))
    items = ws.items()
    vectors = np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32)
    ws.put_embeddings("pocket@t", items["id"], items["content_hash"], vectors)
    coords = np.random.default_rng(1).normal(size=(len(items), 2)).astype(np.float32)
    ws.put_projection(
        "mfm:mine:pocket@t", "pocket@t", items["id"], coords, method="mfm", params={}, metrics={}
    )

    ws.close()
    with served_client(tmp_path / "ws") as client:
        params = {"dataset": "mine", "encoder": "pocket@t"}
        response = client.get("/api/projection/csv", params=params)
        assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    stored = items.set_index("id")["text"]
    assert [t for t in stored.dropna() if t in FORMULAS] == list(FORMULAS)  # stored raw
    expected = [None if pd.isna(t) else f"'{t}" if t in FORMULAS else t for t in stored]
    got = [None if pd.isna(t) else t for t in table.set_index("id").loc[stored.index, "text"]]
    assert got == expected
