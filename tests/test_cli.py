"""The `modalchorus` command line, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from layouts import FORMULAS, formula_manifest, stored_layout

CLI = [sys.executable, "-m", "modalchorus.cli"]


def run(
    *args: str, data_dir: Path | None = None, answer: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI (in ``cwd``); ``answer`` is its standard input (what a user types)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if data_dir is not None:
        env["MODALCHORUS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [*CLI, *args],
        input=answer,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize(
    "command",
    [
        "encoders",
        "embed",
        "info",
        "remove-dataset",
        "demo",
        "eval-encoder",
        "project",
        "evaluate",
        "export",
        "align",
    ],
)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"modalchorus {version('modalchorus')}"


def test_help_loads_neither_torch_nor_lancedb() -> None:
    # Together they cost ~3 s of start-up; commands import what they use.
    probe = (
        "import sys, modalchorus.cli as cli;"
        "from typer.testing import CliRunner;"
        "assert CliRunner().invoke(cli.app, ['project', '--help']).exit_code == 0;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lancedb'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_encoders_json() -> None:
    result = run("encoders", "--json")
    assert result.returncode == 0
    assert {"pocket", "hf"} <= set(json.loads(result.stdout))


def test_embed_then_info(tmp_path, small_manifest) -> None:
    ws = tmp_path / "ws"
    result = run(
        "embed",
        str(small_manifest),
        "--workspace",
        str(ws),
        "--caption-column",
        "caption",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["images"], report["texts"], report["images_encoded"]) == (6, 12, 6)
    info = json.loads(run("info", str(ws), "--json").stdout)
    assert info["items"] == {"image": 6, "text": 12, "total": 18}
    assert [e["items"] for e in info["encoders"].values()] == [18]

    # removing asks first; "n" keeps everything
    name = report["dataset"]
    declined = run("remove-dataset", str(ws), name, answer="n\n")
    assert declined.returncode == 1 and "6 images, 12 texts" in declined.stderr
    assert json.loads(run("info", str(ws), "--json").stdout)["items"]["total"] == 18
    unknown = run("remove-dataset", str(ws), "nope", "--yes")
    assert unknown.returncode == 2 and "no dataset 'nope'" in unknown.stderr
    removed = run("remove-dataset", str(ws), name, "--json", answer="y\n")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("{")  # the question and its answer stay on stderr
    assert json.loads(removed.stdout)["removed_items"] == 18
    assert removed.stderr.endswith("? [y/N]: ")
    info = json.loads(run("info", str(ws), "--json").stdout)
    assert info["items"]["total"] == 0 and [e["items"] for e in info["encoders"].values()] == [18]


def test_corrupt_images_are_skipped_and_reported(tmp_path, data_dir) -> None:
    folder = tmp_path / "photos" / "dog"
    folder.mkdir(parents=True)
    source = sorted((data_dir / "coco_mini_captions" / "images").glob("*.jpg"))[:3]
    for path in source:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(source[0].read_bytes()[:400])
    (folder / "notes.jpg").write_text("not an image")
    result = run("embed", str(tmp_path / "photos"), "-w", str(tmp_path / "ws"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 3
    assert sorted(s["id"] for s in report["skipped"]) == ["dog/broken.jpg", "dog/notes.jpg"]


def photo_folder(root: Path, data_dir: Path, classes: dict[str, int]) -> Path:
    """A folder of real photos in class sub-folders, ``classes[name]`` photos each."""
    photos = iter(sorted((data_dir / "coco_mini_captions" / "images").glob("*.jpg")))
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for _ in range(count):
            photo = next(photos)
            shutil.copy(photo, root / name / photo.name)
    return root


def test_names_are_printed_as_given_and_sources_work_from_any_folder(tmp_path, data_dir) -> None:
    from modalchorus.store import Workspace

    folder = photo_folder(tmp_path / "holiday [final]", data_dir, {"cat": 2, "dog": 2})
    # first in path order: --limit stops reading after the first 3 usable images
    (folder / "[bold]x.jpg").write_text("not an image")
    result = run("embed", folder.name, "-w", "ws", "--limit", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "holiday [final]: 3 images" in result.stdout  # not read as console markup
    assert "[bold]x.jpg" in result.stderr
    ws = tmp_path / "ws"
    assert "holiday [final]" in run("info", str(ws)).stdout
    sources = Workspace.open(ws).items(kind="image")["source"]
    assert len(sources) == 3 and all(Path(p).is_absolute() and Path(p).is_file() for p in sources)

    # Other data under a taken name, reserved names and manifest-only options are refused.
    other = photo_folder(tmp_path / "birds", data_dir, {"bird": 3})
    before = run("info", str(ws), "--json").stdout
    for extra, needle in (
        (["--name", "holiday [final]"], "has classes ('cat', 'dog')"),
        (["--name", "uploads"], "Augment panel adds; pass --name with another name"),
        (["--name", "a/b"], "without a '/'"),
        (["--caption-column", "caption"], "apply to manifests"),
    ):
        refused = run("embed", str(other), "-w", str(ws), *extra)
        assert refused.returncode == 2 and needle in refused.stderr, refused.stderr
    assert run("info", str(ws), "--json").stdout == before


def test_a_captions_list_is_named_after_its_file(tmp_path, data_dir) -> None:
    records = json.loads((data_dir / "coco_mini_captions" / "captions.json").read_text())[:3]
    for rec in records:
        (tmp_path / rec["image"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / "coco_mini_captions" / rec["image"], tmp_path / rec["image"])
    (tmp_path / "trip.json").write_text(json.dumps(records))
    result = run("embed", str(tmp_path / "trip.json"), "-w", str(tmp_path / "ws"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "trip" and report["images"] == 3


def test_unknown_encoder_fails_in_one_line_and_writes_nothing(tmp_path, small_manifest) -> None:
    ws = tmp_path / "ws"
    result = run("embed", str(small_manifest), "-w", str(ws), "--encoder", "clip-xl")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown encoder 'clip-xl'" in result.stderr
    assert not ws.exists()


def test_empty_dataset_fails_and_writes_nothing(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("embed", str(tmp_path / "empty"), "-w", str(tmp_path / "ws"))
    assert result.returncode == 2 and "no usable images" in result.stderr.lower()
    assert not (tmp_path / "ws").exists()


def test_manifest_missing_column_is_named(tmp_path, small_manifest) -> None:
    result = run(
        "embed", str(small_manifest), "-w", str(tmp_path / "ws"), "--caption-column", "description"
    )
    assert result.returncode == 2 and "'description'" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_serve_on_a_taken_port_fails_in_one_line(tmp_path) -> None:
    from modalchorus.store import Workspace

    Workspace.create(tmp_path / "ws").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", str(tmp_path / "ws"), "--port", str(port))
        # The demo checks the port before its build, which takes minutes.
        demo = run("demo", "--workspace", str(tmp_path / "demo"), "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert "ModalChorus UI" not in result.stdout  # no URL that does not work
    assert demo.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in demo.stderr
    assert not (tmp_path / "demo").exists()


def test_info_on_a_folder_that_is_not_a_workspace(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    result = run("info", str(tmp_path))
    assert result.returncode == 2 and "is not a workspace" in result.stderr
    assert tree(tmp_path) == before
    assert run("info", str(tmp_path / "missing")).returncode == 2
    assert not (tmp_path / "missing").exists()


def test_eval_encoder_json_on_real_cifar(data_dir) -> None:
    result = run(
        "eval-encoder", "--dataset", "cifar10", "--limit", "40", "--json", data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 40 and 0 <= report["accuracy"] <= 1
    assert set(report["per_class_accuracy"]) == {
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    }
    assert run("eval-encoder", "--dataset", "mnist").returncode == 2


def test_project_stores_layouts_with_quality_figures(tmp_path, small_manifest) -> None:
    ws = tmp_path / "ws"
    assert (
        run("embed", str(small_manifest), "-w", str(ws), "--caption-column", "caption").returncode
        == 0
    )
    for method, extra in (("pca", []), ("mfm", ["--refine-steps", "20"])):
        result = run("project", str(ws), "--method", method, "--k", "3", "--json", *extra)
        assert result.returncode == 0, result.stderr
        (projection,) = json.loads(result.stdout)["projections"]
        assert projection["n_items"] == 18 and projection["method"] == method
        assert 0 < projection["metrics"]["inter_T@3"] <= 1
    info = json.loads(run("info", str(ws), "--json").stdout)
    assert info["projections"]["total"] == 2
    assert [(p["method"], p["dataset"], p["n_items"]) for p in info["stored_projections"]] == [
        ("pca", "manifest", 18),
        ("mfm", "manifest", 18),
    ]
    assert "projections of pocket@" in run("info", str(ws)).stdout
    noted = run("project", str(ws), "--method", "pca", "--k", "3,10", "--json")
    assert noted.returncode == 0 and "k = 10 skipped" in noted.stderr
    # 6 images: k = 4 < 6, but the metrics need 2 * 6 - 3k - 1 > 0; the note says so
    # (the metrics' own rule), and no metric is skipped behind its back.
    noted = run("project", str(ws), "--method", "pca", "--k", "3,4", "--json")
    assert noted.returncode == 0, noted.stderr
    assert "note: manifest: k = 4 skipped: k=4 is too large for 6 image points" in noted.stderr
    assert "skipping" not in noted.stderr
    (projection,) = json.loads(noted.stdout)["projections"]
    assert projection["metrics"]["ks"] == [3] and projection["metrics"]["skipped"] == []
    bad = run("project", str(ws), "--method", "isomap")
    assert bad.returncode == 2 and "unknown --method 'isomap'" in bad.stderr
    assert run("project", str(ws), "--dataset", "nope").returncode == 2
    bad = run("project", str(ws), "--method", "pca", "--seed", str(2**40))
    assert bad.returncode == 2 and "'--seed'" in bad.stderr
    bad = run("project", str(ws), "--method", "pca", "--refine-steps", "5")
    assert bad.returncode == 2 and "--refine-steps applies to --method mfm only" in bad.stderr
    # A dataset without texts cannot be mapped: found before any other dataset is fitted.
    photos = tmp_path / "photos"
    photos.mkdir()
    lines = small_manifest.read_text().splitlines()
    for image in list(dict.fromkeys(json.loads(line)["image"] for line in lines))[:3]:
        shutil.copy(image, photos)
    assert run("embed", str(photos), "-w", str(ws)).returncode == 0
    before = run("info", str(ws), "--json").stdout
    too_small = run("project", str(ws), "--method", "umap")
    assert too_small.returncode == 2 and "'photos' has 3 images and 0 texts" in too_small.stderr
    assert run("info", str(ws), "--json").stdout == before

    removed = run("remove-dataset", str(ws), "manifest", "--yes", "--json")
    assert removed.returncode == 0, removed.stderr
    assert sorted(n.split(":")[0] for n in json.loads(removed.stdout)["removed_projections"]) == [
        "mfm",
        "pca",
    ]
    assert json.loads(run("info", str(ws), "--json").stdout)["projections"]["total"] == 0


def test_project_refuses_a_partly_embedded_dataset_before_fitting_any(
    tmp_path, small_manifest
) -> None:
    from modalchorus.data import load_dataset
    from modalchorus.store import Workspace

    ws = tmp_path / "ws"
    embedded = run("embed", str(small_manifest), "-w", str(ws), "--caption-column", "caption")
    assert embedded.returncode == 0, embedded.stderr
    # Items stored without vectors (through the Python API).
    with Workspace.open(ws) as opened:
        opened.add_dataset(load_dataset(str(small_manifest), name="cut", caption_column="caption"))
    before = run("info", str(ws), "--json").stdout
    result = run("project", str(ws), "--method", "pca")
    assert result.returncode == 2
    assert "18 of 18 items of 'cut' have no pocket@" in result.stderr
    assert "run `modalchorus embed` on 'cut' again with that encoder" in result.stderr
    assert "`remove-dataset` first" in result.stderr
    assert run("info", str(ws), "--json").stdout == before  # 'manifest' was not fitted either


def test_export_writes_a_stored_layout_with_item_metadata(tmp_path, small_manifest) -> None:
    import numpy as np
    import pandas as pd

    from modalchorus.data import load_dataset
    from modalchorus.store import UnknownDatasetError, Workspace

    ws = Workspace.open(stored_layout(tmp_path / "ws", small_manifest))
    items = ws.items()
    coords = ws.get_projection("mfm:mine:pocket@t")[1]
    removed = ws.remove_items([items["id"][0]])  # an image and its captions
    kept = ~items["id"].isin(removed).to_numpy()

    for name in ("layout.csv", "layout.parquet", "layout.jsonl"):
        result = run("export", str(tmp_path / "ws"), str(tmp_path / name), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["rows"] == kept.sum() == len(items) - len(removed)
        read = {".csv": pd.read_csv, ".parquet": pd.read_parquet}.get(
            Path(name).suffix, lambda p: pd.read_json(p, lines=True)
        )
        table = read(tmp_path / name)
        assert table["id"].tolist() == items["id"][kept].tolist()
        assert table["text"].tolist()[-1] == items["text"].tolist()[-1]
        np.testing.assert_allclose(table[["x", "y"]].to_numpy(), coords[kept], rtol=1e-6)

    again = run("export", str(tmp_path / "ws"), str(tmp_path / "layout.csv"))
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    assert (
        run("export", str(tmp_path / "ws"), str(tmp_path / "layout.csv"), "--force").returncode == 0
    )
    umask = os.umask(0o022)  # the mode open() would give, not mkstemp's 0600
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "layout.csv").stat().st_mode) == 0o666 & ~umask

    from modalchorus.exporting import find_projection, write_table

    with pytest.raises(ValueError, match="no stored tsne projection for pocket@t") as missing:
        find_projection(ws, "pocket@t", "tsne", None)
    assert f"run `modalchorus project {ws.path} --method tsne` first" in str(missing.value)
    with pytest.raises(UnknownDatasetError, match="'nope'"):
        find_projection(ws, "pocket@t", "mfm", "nope")
    with pytest.raises(ValueError, match="use a name ending in"):
        write_table(table, tmp_path / "layout.txt")
    ws.add_dataset(load_dataset(str(small_manifest), name="b:2", caption_column="caption"))
    ids = ws.items(dataset="b:2")["id"]
    ws.put_projection(
        "mfm:b:2:pocket@t", "pocket@t", ids, coords[: len(ids)], method="mfm", params={}, metrics={}
    )
    with pytest.raises(ValueError, match=r"choose one of \['b:2', 'mine'\]"):
        find_projection(ws, "pocket@t", "mfm", None)
    assert find_projection(ws, "pocket@t", "mfm", "b:2") == "mfm:b:2:pocket@t"
    assert sorted(p.name for p in tmp_path.glob("layout*")) == [
        "layout.csv",
        "layout.jsonl",
        "layout.parquet",
    ]


def test_removing_uploads_deletes_their_files(tmp_path, small_manifest) -> None:
    from modalchorus.data import load_dataset
    from modalchorus.store import Workspace

    ws = Workspace.create(tmp_path / "ws")
    ws.add_dataset(load_dataset(str(small_manifest), name="uploads", caption_column="caption"))
    ws.add_dataset(load_dataset(str(small_manifest), name="mine", caption_column="caption"))
    stored = tmp_path / "ws" / "uploads" / "0123abcd.png"
    stored.parent.mkdir()
    stored.write_bytes(b"an uploaded image")
    result = run("remove-dataset", str(tmp_path / "ws"), "uploads", "--yes")
    assert result.returncode == 0, result.stderr
    assert not stored.parent.exists()
    assert [d.name for d in Workspace.open(tmp_path / "ws").datasets()] == ["mine"]


def test_align_checks_its_export_folder_first_and_reports_the_active_version(
    tmp_path, small_manifest
) -> None:
    ws = tmp_path / "ws"
    embedded = run("embed", str(small_manifest), "-w", str(ws), "--caption-column", "caption")
    assert embedded.returncode == 0, embedded.stderr
    from modalchorus.store import Workspace

    images = Workspace.open(ws).items(kind="image")["id"].tolist()
    intents = tmp_path / "intents.json"
    spec = {"type": "set-set", "a": images[:2], "b": images[2:4], "mode": "align"}
    intents.write_text(json.dumps({"intents": [spec]}))
    (tmp_path / "a-file").write_text("mine")
    refused = run("align", str(ws), "--intents", str(intents), "--export", str(tmp_path / "a-file"))
    assert refused.returncode == 2 and "is a file" in refused.stderr
    under_a_file = str(tmp_path / "a-file" / "weights")
    refused = run("align", str(ws), "--intents", str(intents), "--export", under_a_file)
    assert refused.returncode == 2 and "the folder cannot be made" in refused.stderr
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "alignment.json").write_text("an earlier export")
    refused = run("align", str(ws), "--intents", str(intents), "--export", str(weights))
    assert refused.returncode == 2 and f"--export {weights} is not empty" in refused.stderr
    assert "--force" in refused.stderr
    missing = tmp_path / "no-intents.json"
    refused = run("align", str(ws), "--intents", str(missing))
    assert refused.returncode == 2 and f"--intents {missing} does not exist" in refused.stderr
    assert "Errno" not in refused.stderr
    nothing = json.loads(run("align", str(ws), "--undo", "--json").stdout)
    assert nothing["run"] is None  # the refused runs were never recorded
    assert (weights / "alignment.json").read_text() == "an earlier export"

    args = ("--intents", str(intents), "--steps", "3", "--export", str(weights), "--force")
    ran = run("align", str(ws), *args, "--json")
    assert ran.returncode == 0, ran.stderr
    run_info = json.loads(ran.stdout)["run"]
    assert json.loads((weights / "alignment.json").read_text())  # replaced by the new export
    undone = json.loads(run("align", str(ws), "--undo", "--json").stdout)
    assert undone["active_version"] == run_info["base_encoder_id"]
    redone = json.loads(run("align", str(ws), "--redo", "--json").stdout)
    assert redone["active_version"] == run_info["encoder_id"] != run_info["base_encoder_id"]

    # A dataset embedded after the run gets the active version's vectors too: it projects.
    later = run(
        "embed",
        str(small_manifest),
        "-w",
        str(ws),
        "--caption-column",
        "caption",
        "--name",
        "later",
        "--json",
    )
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["active_version"] == run_info["encoder_id"]
    projected = run("project", str(ws), "--dataset", "later", "--method", "pca", "--json")
    assert projected.returncode == 0, projected.stderr
    (projection,) = json.loads(projected.stdout)["projections"]
    assert projection["name"].endswith(run_info["encoder_id"])


def test_an_image_folder_named_like_a_manifest_is_a_folder(tmp_path, small_manifest) -> None:
    folder = tmp_path / "shots.parquet"
    folder.mkdir()
    lines = small_manifest.read_text().splitlines()
    for image in list(dict.fromkeys(json.loads(line)["image"] for line in lines))[:2]:
        shutil.copy(image, folder)
    result = run("embed", str(folder), "-w", str(tmp_path / "ws"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == 2


def test_evaluate_refuses_an_unknown_method_before_embedding(tmp_path) -> None:
    cache = tmp_path / "cache"
    args = ("evaluate", "--dataset", "coco-mini", "--cache", str(cache))
    result = run(*args, "--methods", "pca,bogus")
    assert result.returncode == 2 and "unknown method(s) ['bogus']" in result.stderr
    assert not cache.exists()  # nothing was embedded
    assert "names no method" in run(*args, "--methods", " , ").stderr


def test_eval_encoder_checks_its_output_folder_before_the_work(tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "out.json"
    result = run("eval-encoder", "--dataset", "cifar10", "--output", str(missing))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_export_csv_cells_never_run_as_formulas(tmp_path, small_manifest) -> None:
    import pandas as pd

    ws = stored_layout(tmp_path / "ws", formula_manifest(small_manifest))
    tables = {}
    for name in ("layout.csv", "layout.jsonl", "layout.parquet"):
        result = run("export", str(ws), str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        read = {".csv": pd.read_csv, ".parquet": pd.read_parquet}.get(
            Path(name).suffix, lambda p: pd.read_json(p, lines=True)
        )
        tables[Path(name).suffix] = read(tmp_path / name)
    texts = tables[".jsonl"]["text"].dropna().tolist()
    assert [t for t in texts if t in FORMULAS] == list(FORMULAS)  # JSON Lines: raw texts
    assert tables[".parquet"]["text"].dropna().tolist() == texts
    in_csv = tables[".csv"]["text"].dropna().tolist()
    assert in_csv == [f"'{t}" if t in FORMULAS else t for t in texts]
    # Sources stay absolute: the only way to find the file (the id holds the rest).
    sources = tables[".csv"].loc[tables[".csv"]["kind"] == "image", "source"]
    assert all(Path(s).is_absolute() and Path(s).is_file() for s in sources)


def test_csv_safe_quotes_every_formula_start_and_nothing_else() -> None:
    import numpy as np
    import pandas as pd

    from modalchorus.exporting import csv_safe

    table = pd.DataFrame(
        {
            "text": ["=A1", "+1", "-1", "@x", "\tx", "\rx", "a=b", "", None],
            "x": np.arange(-4.0, 5.0),
        }
    )
    safe = csv_safe(table)
    expected = ["'=A1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "a=b", ""]
    assert safe["text"].tolist()[:8] == expected and pd.isna(safe["text"].iloc[8])
    assert safe["x"].tolist() == table["x"].tolist()  # numbers (negative too) are numbers
    assert table["text"].iloc[0] == "=A1"  # a copy: the input is unchanged


def test_export_checks_its_target_before_the_work(tmp_path, small_manifest) -> None:
    ws = stored_layout(tmp_path / "ws", small_manifest)
    target = tmp_path / "elsewhere.csv"
    target.write_text("theirs")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for extra in ([], ["--force"]):
        refused = run("export", str(ws), str(link), *extra)
        assert refused.returncode == 2 and "is a symbolic link" in refused.stderr
    assert link.is_symlink() and target.read_text() == "theirs"

    (tmp_path / "old.csv").write_text("old")
    exists = run("export", str(ws), str(tmp_path / "old.csv"))
    assert exists.returncode == 2 and "exists; pass --force to replace it" in exists.stderr
    assert "overwrite=True" not in exists.stderr  # the Python API's name, not the CLI's
    bogus = run("export", str(ws), str(tmp_path / "new.csv"), "--method", "bogus")
    assert bogus.returncode == 2
    assert "unknown projection method 'bogus'; use one of mfm, tsne" in bogus.stderr
    folder = run("export", str(ws), str(tmp_path), "--force")
    assert folder.returncode == 2 and "use a name ending in" in folder.stderr
    assert not (tmp_path / "new.csv").exists()


def test_serve_on_a_host_that_is_not_this_machines_says_so(tmp_path) -> None:
    from modalchorus.store import Workspace

    Workspace.create(tmp_path / "ws").close()
    result = run("serve", str(tmp_path / "ws"), "--host", "999.1.1.1", "--port", "8799")
    assert result.returncode == 2
    assert "cannot listen on 999.1.1.1:8799" in result.stderr  # the address as given
    assert "give --host an address of this machine" in result.stderr
    assert "--port" not in result.stderr  # the port is not the problem
    assert result.stderr.strip().count("\n") == 0


def test_info_on_a_damaged_workspace_creates_nothing(tmp_path, small_manifest) -> None:
    ws = stored_layout(tmp_path / "ws", small_manifest)
    shutil.rmtree(ws / "lance")
    before = tree(ws)
    for command in (["info", str(ws)], ["export", str(ws), str(tmp_path / "a.csv")]):
        result = run(*command)
        assert result.returncode == 2, result.stderr
        assert "is damaged: its lance/ folder" in result.stderr
    assert tree(ws) == before and not (tmp_path / "a.csv").exists()


def png(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), colour).save(path)
    return path


def test_embed_a_coco_json_whose_images_are_elsewhere(tmp_path) -> None:
    photos = tmp_path / "photos"
    png(photos / "red.png", (200, 10, 10))
    png(photos / "blue.png", (10, 10, 200))
    coco = {
        "images": [{"id": 1, "file_name": "red.png"}, {"id": 2, "file_name": "blue.png"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "a red square"},
            {"id": 11, "image_id": 2, "caption": "a blue square"},
            {"id": 12, "image_id": 2, "caption": "something blue"},
        ],
    }
    annotations = tmp_path / "annotations" / "captions.json"
    annotations.parent.mkdir()
    annotations.write_text(json.dumps(coco))
    ws = tmp_path / "ws"

    alone = run("embed", str(annotations), "-w", str(ws))  # the images are not next to it
    assert alone.returncode == 2 and "no usable images" in alone.stderr.lower()
    for images_dir, needle in (
        (tmp_path / "missing", "does not exist"),
        (photos / "red.png", "is not a folder"),
    ):
        refused = run("embed", str(annotations), "-w", str(ws), "--images-dir", str(images_dir))
        assert refused.returncode == 2 and f"--images-dir {images_dir} {needle}" in refused.stderr
    refused = run("embed", str(photos), "-w", str(ws), "--images-dir", str(photos))
    assert refused.returncode == 2
    assert "--images-dir applies to .json sources" in refused.stderr
    assert not ws.exists()

    # A relative --images-dir is stored as an absolute source: later commands work anywhere.
    coco_args = ("annotations/captions.json", "-w", "ws", "--images-dir", "photos", "--json")
    result = run("embed", *coco_args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["dataset"], report["images"], report["texts"]) == ("captions", 2, 3)
    from modalchorus.store import Workspace

    sources = Workspace.open(ws).items(kind="image")["source"].tolist()
    assert sources == [str(photos.resolve() / "red.png"), str(photos.resolve() / "blue.png")]


def test_re_embedding_unchanged_data_writes_nothing(tmp_path, small_manifest) -> None:
    ws = tmp_path / "ws"
    args = ("embed", str(small_manifest), "-w", str(ws), "--caption-column", "caption")
    assert run(*args).returncode == 0
    before, files = run("info", str(ws), "--json").stdout, tree(ws)
    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cache_hits"] == 18
    assert run("info", str(ws), "--json").stdout == before  # the same last commit
    assert tree(ws) == files  # no new table versions either


def test_evaluate_notes_the_ks_its_metrics_cannot_score(tmp_path, data_dir) -> None:
    args = ("evaluate", "--dataset", "coco-mini", "--limit", "5", "--methods", "pca")
    out = tmp_path / "out.json"
    where = ("--cache", str(tmp_path / "cache"), "--output", str(out), "--json")
    result = run(*args, "--k", "1,3", *where, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    # 5 images: 2 * 5 - 3k - 1 > 0 holds for k = 1 only (the metrics' rule, said up front)
    assert "note: coco-mini: k = 3 skipped: k=3 is too large for 5 image points" in result.stderr
    assert "skipping" not in result.stderr  # no metric is then skipped behind its back
    report = json.loads(result.stdout)
    assert report["ks"] == [1] and report["rows"][0]["skipped"] == []


# --------------------------------------------------------------------------- audit fixes


def test_embed_lists_each_skipped_entry_with_its_reason_once(tmp_path, data_dir) -> None:
    folder = photo_folder(tmp_path / "photos", data_dir, {"dog": 3})
    (folder / "dog" / "broken.jpg").write_text("not an image")
    result = run("embed", str(folder), "-w", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert "skipped 1:" in result.stderr
    assert "  dog/broken.jpg: not a recognised image format" in result.stderr  # why, not only ids
    assert "WARNING" not in result.stderr  # the loader's own summary would say it twice


def test_manifest_references_through_dot_dot_name_no_folder_above_it(tmp_path, data_dir) -> None:
    from modalchorus.store import Workspace

    photos = sorted((data_dir / "coco_mini_captions" / "images").glob("*.jpg"))[:3]
    mine, other = tmp_path / "mine", tmp_path / "other"
    (mine / "imgs").mkdir(parents=True)
    other.mkdir()
    shutil.copy(photos[0], mine / "imgs" / "a.jpg")
    shutil.copy(photos[1], mine / "b.jpg")
    shutil.copy(photos[2], other / "c.jpg")
    manifest = mine / "pairs.csv"
    manifest.write_text("image,caption\nimgs/a.jpg,x\nimgs/../b.jpg,y\n../other/c.jpg,z\n")
    result = run("embed", str(manifest), "-w", str(tmp_path / "ws"), "--caption-column", "caption")
    assert result.returncode == 0, result.stderr
    images = Workspace.open(tmp_path / "ws").items(kind="image").set_index("id")["source"]
    outside = [i for i in images.index if i.startswith("pairs/external/")]
    assert len(outside) == 1 and outside[0].endswith("/c.jpg")  # not pairs/../other/c.jpg
    assert sorted(set(images.index) - set(outside)) == ["pairs/b.jpg", "pairs/imgs/a.jpg"]
    assert images["pairs/b.jpg"] == str(mine / "b.jpg")  # sources are normalised too
    assert images[outside[0]] == str(other / "c.jpg")


def test_project_checks_every_option_before_any_note_or_fit(tmp_path, small_manifest) -> None:
    ws = stored_layout(tmp_path / "ws", small_manifest)  # 6 images: k = 10 and 20 get a note
    bad = run("project", str(ws), "--method", "isomap")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown --method 'isomap'; use one of mfm, tsne, umap, mds, dcm, pca"
    ]
    unknown = run("project", str(ws), "--dataset", "nope")
    assert unknown.returncode == 2 and "its datasets: 'mine'" in unknown.stderr
    unscored = run("project", str(ws), "--method", "pca", "--k", "50")
    assert unscored.returncode == 0, unscored.stderr
    assert "k = 50 skipped" in unscored.stderr and "scored at k = 1 instead" in unscored.stderr


def test_project_on_a_workspace_without_datasets_fails(tmp_path, small_manifest) -> None:
    from modalchorus.store import Workspace

    ws = stored_layout(tmp_path / "ws", small_manifest)
    with Workspace.open(ws) as opened:
        opened.remove_dataset("mine")  # its embeddings stay cached
    result = run("project", str(ws), "--method", "pca")
    assert result.returncode == 2 and "holds no dataset" in result.stderr
    assert "modalchorus embed SOURCE" in result.stderr


def test_remove_dataset_without_an_answer_says_to_pass_yes(tmp_path, small_manifest) -> None:
    ws = stored_layout(tmp_path / "ws", small_manifest)
    before = run("info", str(ws), "--json").stdout
    result = run("remove-dataset", str(ws), "mine", answer="")  # stdin at its end: a script
    assert result.returncode == 1 and "pass --yes" in result.stderr
    assert run("info", str(ws), "--json").stdout == before


def test_align_checks_scope_and_steps_before_loading_an_encoder(tmp_path, small_manifest) -> None:
    ws = stored_layout(tmp_path / "ws", small_manifest)
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps([{"type": "set-set", "a": ["x"], "b": ["y"]}]))
    bad = run("align", str(ws), "--intents", str(intents), "--scope", "lorra")
    assert bad.returncode == 2
    assert "unknown --scope 'lorra'; use one of adapter, lora, last-blocks" in bad.stderr
    bad = run("align", str(ws), "--intents", str(intents), "--steps", "0")
    assert bad.returncode == 2 and "'--steps'" in bad.stderr


def test_evaluate_fits_the_mfm_on_a_small_limit_and_refuses_a_tiny_one(tmp_path, data_dir) -> None:
    cache, output = tmp_path / "cache", tmp_path / "out.json"
    args = ("evaluate", "--dataset", "coco-mini", "--cache", str(cache), "--output", str(output))
    small = run(*args, "--limit", "5", "--methods", "mfm", "--json", data_dir=data_dir)
    assert small.returncode == 0, small.stderr  # 5 images: fewer than the MFM's 15 neighbours
    assert [row["method"] for row in json.loads(small.stdout)["rows"]] == ["mfm"]
    tiny = run(*args, "--limit", "2", "--methods", "pca", data_dir=data_dir)
    assert tiny.returncode == 2
    assert "has 2 image(s) and 10 text(s)" in tiny.stderr and "larger --limit" in tiny.stderr


def test_evaluate_names_a_cache_that_is_no_workspace(tmp_path, data_dir) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    args = ("evaluate", "--dataset", "coco-mini", "--limit", "3", "--methods", "pca")
    result = run(
        *args, "--cache", str(taken), "--output", str(tmp_path / "out.json"), data_dir=data_dir
    )
    assert result.returncode == 2 and f"--cache {taken}: " in result.stderr


def test_evaluate_follows_the_mfm_fit_step_by_step() -> None:
    from modalchorus import cli

    reports: list[tuple[float, str]] = []
    params = cli._evaluate_params(["pca", "mfm"], lambda f, m: reports.append((f, m)))
    fitting = type("Fitting", (), {"schedule_": {"fit": 300, "refine": 100}})()
    assert params["mfm"]["callback"](200, 0.5, fitting) is False  # never stops the fit
    assert reports == [(0.75, "fitting mfm (2/2): step 200")]
    assert cli._evaluate_params(["pca"], print) == {}


def test_an_error_is_one_line_even_when_its_message_is_not(capsys) -> None:
    import typer

    from modalchorus import cli

    with pytest.raises(typer.Exit) as exited, cli.user_errors():
        raise ValueError("could not load the model:\n  check your connection\n")
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == "error: could not load the model: check your connection\n"


def test_help_paragraphs_wrap_to_the_screen_not_to_the_source() -> None:
    env = dict(os.environ, COLUMNS="200")
    shown = subprocess.run(
        [*CLI, "align", "--help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "Nothing changes in the workspace unless the whole run succeeds." in shown


def test_a_missing_projection_says_what_to_run(tmp_path, small_manifest) -> None:
    from modalchorus.data import load_dataset
    from modalchorus.exporting import find_projection
    from modalchorus.store import Workspace

    with Workspace.create(tmp_path / "ws") as ws:
        with pytest.raises(ValueError, match="holds no dataset: `modalchorus embed SOURCE -w "):
            find_projection(ws, "pocket@t", "mfm", None)
        ws.add_dataset(load_dataset(str(small_manifest), name="plain", caption_column=None))
        with pytest.raises(ValueError, match="'plain' has 6 images and 0 texts: a joint map"):
            find_projection(ws, "pocket@t", "mfm", "plain")  # no `project` could make one
        ws.add_dataset(load_dataset(str(small_manifest), name="c", caption_column="caption"))
        with pytest.raises(ValueError) as missing:
            find_projection(ws, "pocket@t", "mfm", "c")
        assert f"run `modalchorus project {ws.path} --dataset c --method mfm` first" in str(
            missing.value
        )


def test_an_interrupted_embed_leaves_no_new_workspace_behind(tmp_path, data_dir) -> None:
    from modalchorus.store import Workspace

    ws = tmp_path / "ws"
    env = dict(os.environ, HF_HUB_OFFLINE="1", MODALCHORUS_DATA_DIR=str(data_dir))
    args = ("embed", "cifar10", "-w", str(ws), "--limit", "3000")
    with subprocess.Popen([*CLI, *args], env=env, stderr=subprocess.PIPE, text=True) as embed:
        while not (ws / "workspace.sqlite").exists() and embed.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # into the encoding, which takes far longer
        embed.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = embed.communicate(timeout=120)
    assert embed.returncode != 0, stderr
    assert not ws.exists()
    # A workspace that was there before is kept, with what it held.
    Workspace.create(ws).close()
    with subprocess.Popen([*CLI, *args], env=env, stderr=subprocess.PIPE, text=True) as embed:
        time.sleep(4.0)
        embed.send_signal(signal.SIGINT)
        embed.communicate(timeout=120)
    assert Workspace.open(ws).datasets() == []
