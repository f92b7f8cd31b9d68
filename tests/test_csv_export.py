"""``GET /api/projection/csv`` from a real server: cells never run as spreadsheet formulas,
and no path shows the server's folders."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
from browser.support import served_client
from layouts import FORMULAS, formula_manifest, stored_layout

from modalchorus.exporting import projection_table, write_table
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


def test_projection_csv_shows_no_server_folder_but_paths_below_the_datasets(
    tmp_path: Path, small_manifest: Path
) -> None:
    """Over HTTP, ``source`` is the path below the folder holding the dataset's files (a
    server on 0.0.0.0 must not show its folders); the CLI's local export keeps absolute
    paths."""
    rows = [json.loads(line) for line in small_manifest.read_text().splitlines()]
    photos = tmp_path / "secret-home" / "photos"
    for i, row in enumerate(rows):  # the images in two sub-folders of one folder
        copy = photos / ("a" if i % 4 < 2 else "b") / Path(row["image"]).name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(row["image"], copy)
        row["image"] = str(copy)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    root = stored_layout(tmp_path / "ws", manifest)
    with served_client(root) as client:
        response = client.get(
            "/api/projection/csv", params={"dataset": "mine", "encoder": "pocket@t"}
        )
        assert response.status_code == 200, response.text
    # (the ids are the manifest's image paths relative to the manifest's folder)
    assert str(tmp_path) not in response.text
    table = pd.read_csv(io.StringIO(response.text), keep_default_na=False)
    images = table[table["kind"] == "image"]
    assert len(images) == 6 and set(images["source"].str.split("/").str[0]) == {"a", "b"}
    for item_id, source in zip(images["id"], images["source"], strict=True):
        assert (photos / source).is_file(), (item_id, source)  # a user finds the file
    captions = table[table["kind"] == "text"]  # a caption's source is its image's
    assert (
        captions["source"].tolist()
        == captions["image_id"].map(images.set_index("id")["source"]).tolist()
    )

    workspace = Workspace.open(root)
    local = tmp_path / "local.csv"
    write_table(projection_table(workspace, "mfm:mine:pocket@t"), local)
    exported = pd.read_csv(local, keep_default_na=False)
    sources = exported.loc[exported["kind"] == "image", "source"]
    assert sources.map(lambda s: Path(s).is_absolute() and Path(s).is_file()).all()


def test_relative_sources_per_dataset() -> None:
    from modalchorus.exporting import relative_sources

    items = pd.DataFrame(
        {
            "dataset": ["d", "d", "d", "one", "apart", "apart", "other"],
            "source": [
                "/srv/u/data/cifar/test_batch#3",
                "/srv/u/data/cifar/sub/../data_batch_1#7",
                "",  # a text
                "/srv/u/one/x.png",
                "/home/alice/1.jpg",
                "/mnt/b/2.jpg",  # no shared folder but "/": the file name only
                "relative/3.jpg",  # not a path of this machine's folders: kept
            ],
        },
        index=[4, 5, 6, 7, 8, 9, 10],
    )
    out = relative_sources(items)
    assert out["source"].tolist() == [
        "test_batch#3",
        "data_batch_1#7",
        "",
        "x.png",
        "1.jpg",
        "2.jpg",
        "relative/3.jpg",
    ]
    assert out.index.equals(items.index) and items["source"][4].startswith("/srv")
