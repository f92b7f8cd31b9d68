"""``GET /api/projection/csv`` from a real server: cells never run as spreadsheet formulas."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from browser.support import served_client
from layouts import FORMULAS, formula_manifest, stored_layout

from modalchorus.store import Workspace


def test_projection_csv_quotes_formulas_and_the_stored_texts_stay_raw(
    tmp_path: Path, small_manifest: Path
) -> None:
    root = stored_layout(tmp_path / "ws", formula_manifest(small_manifest))
    items = Workspace.open(root).items()
    with served_client(root) as client:
        params = {"dataset": "mine", "encoder": "pocket@t"}
        response = client.get("/api/projection/csv", params=params)
        assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    stored = items.set_index("id")["text"]
    assert [t for t in stored.dropna() if t in FORMULAS] == list(FORMULAS)  # stored raw
    expected = [None if pd.isna(t) else f"'{t}" if t in FORMULAS else t for t in stored]
    got = [None if pd.isna(t) else t for t in table.set_index("id").loc[stored.index, "text"]]
    assert got == expected
