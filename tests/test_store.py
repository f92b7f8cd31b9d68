"""Workspace store: real LanceDB + SQLite on disk, real COCO-mini files, real SIGKILLs."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from modalchorus.data.types import Dataset, ImageRecord, SkippedItem
from modalchorus.store import (
    NotAWorkspaceError,
    UnknownDatasetError,
    UnknownEncoderError,
    UnknownItemError,
    Workspace,
    WorkspaceExistsError,
    WorkspaceLockedError,
    text_hash,
)
from modalchorus.store.schema import CATALOG_FILE, LANCE_DIR, cache_table, encoder_table_key

HELPER = Path(__file__).parent / "helpers" / "crash_writer.py"
N_IMAGES = 20
DIM = 384


def _load_helper():
    spec = importlib.util.spec_from_file_location("crash_writer", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coco_dataset(data_dir: Path, n: int = N_IMAGES, name: str = "coco") -> Dataset:
    """The first ``n`` COCO-mini photos with their captions, as ImageRecords."""
    root = data_dir / "coco_mini_captions"
    entries = json.loads((root / "captions.json").read_text())[:n]
    records = []
    for entry in entries:
        path = root / entry["image"]
        records.append(
            ImageRecord(
                id=Path(entry["image"]).stem,
                content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
                load=lambda path=path: Image.open(path).convert("RGB"),
                label=None,
                captions=tuple(entry["captions"]),
                split=entry["coco_split"],
                source=str(path),
            )
        )
    return Dataset(name, records, skipped=[SkippedItem("broken.jpg", "unreadable")])


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``path`` with (size, mtime_ns): detects any change."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(path))] = (st.st_size, st.st_mtime_ns)
    return out


def random_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def filled_template(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace holding 20 COCO images + 100 captions, all embedded by ``enc-a``."""
    ws = Workspace.create(tmp_path_factory.mktemp("template") / "ws")
    ws.add_dataset(coco_dataset(data_dir))
    items = ws.items()
    ws.put_embeddings(
        "enc-a", items["id"].tolist(), items["content_hash"].tolist(), random_vectors(len(items))
    )
    return ws.path


@pytest.fixture()
def filled(tmp_path: Path, filled_template: Path, data_dir: Path) -> tuple[Workspace, Dataset]:
    """A private copy of ``filled_template`` (copying is faster than re-adding)."""
    shutil.copytree(filled_template, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws"), coco_dataset(data_dir)


def committed_state(ws: Workspace) -> dict:
    """Everything a reader can see, for before/after comparisons."""
    state = {"items": ws.items(thumbnails=True), "datasets": ws.datasets(), "emb": {}}
    for encoder in ws.embedded_encoders():
        state["emb"][encoder] = ws.get_embeddings(encoder)
    summary = ws.summary()
    state["counts"] = (summary["items"], summary["encoders"], summary["last_commit"]["seq"])
    return state


def assert_same_state(a: dict, b: dict) -> None:
    assert a["items"].equals(b["items"])
    assert a["datasets"] == b["datasets"]
    assert a["emb"].keys() == b["emb"].keys()
    for encoder, (ids, vectors) in a["emb"].items():
        assert b["emb"][encoder][0] == ids
        np.testing.assert_array_equal(b["emb"][encoder][1], vectors)
    assert a["counts"] == b["counts"]


# ------------------------------------------------------------------ create / open


def test_create_then_open(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ws"
    ws = Workspace.create(path)
    assert ws.path == path.resolve()
    assert (path / CATALOG_FILE).is_file() and (path / LANCE_DIR).is_dir()
    con = sqlite3.connect(path / CATALOG_FILE)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    con.close()
    reopened = Workspace.open(path)
    assert reopened.datasets() == [] and reopened.items().empty
    assert list(reopened.items().columns)[:3] == ["id", "kind", "dataset"]
    with pytest.raises(WorkspaceExistsError):
        Workspace.create(path)
    assert Workspace.open_or_create(path).path == ws.path


def test_open_nonexistent_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "ws"
    with pytest.raises(NotAWorkspaceError) as err:
        Workspace.open(path)
    assert "does not exist" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "missing").exists()


def test_open_random_dir_leaves_it_untouched(tmp_path: Path) -> None:
    path = tmp_path / "random"
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("hello")
    (path / "sub" / "data.bin").write_bytes(b"\x00" * 10)
    before = tree(path)
    with pytest.raises(NotAWorkspaceError) as err:
        Workspace.open(path)
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    assert tree(path) == before
    with pytest.raises(FileExistsError):  # not an empty dir: create refuses too
        Workspace.create(path)
    assert tree(path) == before


def test_open_garbage_catalog(tmp_path: Path) -> None:
    path = tmp_path / "fake"
    path.mkdir()
    (path / CATALOG_FILE).write_bytes(b"this is not sqlite" * 100)
    before = tree(path)
    with pytest.raises(NotAWorkspaceError):
        Workspace.open(path)
    assert tree(path) == before
    with pytest.raises(WorkspaceExistsError):  # a catalog file is there: refuse to clobber
        Workspace.create(path)


def test_open_or_create_new(tmp_path: Path) -> None:
    ws = Workspace.open_or_create(tmp_path / "new")
    assert (tmp_path / "new" / CATALOG_FILE).is_file()
    assert ws.summary()["items"]["total"] == 0


# ------------------------------------------------------------------ items


def test_add_dataset_and_read_back(tmp_path: Path, data_dir: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    dataset = coco_dataset(data_dir)
    result = ws.add_dataset(dataset, thumbnail_size=64)
    n_caps = sum(len(r.captions) for r in dataset.images)
    assert (result.added, result.updated, result.unchanged) == (N_IMAGES + n_caps, 0, 0)
    assert (result.n_images, result.n_texts, result.n_skipped) == (N_IMAGES, n_caps, 1)

    ws = Workspace.open(ws.path)  # everything comes back from disk
    items = ws.items()
    assert list(items.columns) == [
        "id", "kind", "dataset", "label", "split", "text", "image_id", "content_hash", "source"
    ]  # fmt: skip
    images = ws.items(kind="image")
    assert images["id"].tolist() == [f"coco/{r.id}" for r in dataset.images]
    assert images["content_hash"].tolist() == [r.content_hash for r in dataset.images]
    assert images["split"].tolist() == [r.split for r in dataset.images]
    texts = ws.items(kind="text", dataset="coco")
    first = dataset.images[0]
    first_texts = texts[texts["image_id"] == f"coco/{first.id}"]
    assert first_texts["id"].tolist() == [f"coco/{first.id}#{j}" for j in range(5)]
    assert first_texts["text"].tolist() == list(first.captions)
    assert first_texts["content_hash"].tolist() == [text_hash(c) for c in first.captions]
    assert text_hash("a") == hashlib.sha256(b"a").hexdigest()
    assert len(items) == N_IMAGES + n_caps and ws.items(dataset="other").empty

    thumb = Image.open(io.BytesIO(ws.thumbnail(f"coco/{first.id}")))
    assert thumb.format == "JPEG" and max(thumb.size) == 64
    with pytest.raises(UnknownItemError):
        ws.thumbnail("coco/nope")
    with pytest.raises(KeyError):  # UnknownItemError is a KeyError
        ws.thumbnail("nope")
    with pytest.raises(ValueError, match="text item"):
        ws.thumbnail(f"coco/{first.id}#0")
    with pytest.raises(ValueError, match="kind"):
        ws.items(kind="images")

    (info,) = ws.datasets()
    assert (info.name, info.classes, info.n_images, info.n_texts) == ("coco", None, 20, n_caps)
    assert info.skipped == (SkippedItem("broken.jpg", "unreadable"),) and info.n_skipped == 1
    summary = ws.summary()
    assert summary["datasets"] == {"coco": {"image": 20, "text": n_caps, "skipped": 1}}
    assert summary["items"] == {"image": 20, "text": n_caps, "total": 20 + n_caps}
    assert summary["disk_bytes"]["lance"] > 0 and summary["encoders"] == {}


def test_readd_is_idempotent_and_counts_changes(tmp_path: Path, data_dir: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    dataset = coco_dataset(data_dir)
    ws.add_dataset(dataset)
    before = ws.items(thumbnails=True)
    loads = []

    def counting(record: ImageRecord) -> ImageRecord:
        def load():
            loads.append(record.id)
            return record.load()

        return ImageRecord(
            record.id, record.content_hash, load, record.label, record.captions,
            record.split, record.source,
        )  # fmt: skip

    again = ws.add_dataset(Dataset("coco", [counting(r) for r in dataset.images]))
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(before))
    assert loads == []  # unchanged images are not even decoded
    assert ws.items(thumbnails=True).equals(before)

    # one changed caption, one relabelled image, one new image with captions
    images = list(dataset.images)
    images[0] = ImageRecord(
        images[0].id, images[0].content_hash, images[0].load, None,
        ("a new caption",) + images[0].captions[1:], images[0].split, images[0].source,
    )  # fmt: skip
    images[1] = ImageRecord(
        images[1].id, images[1].content_hash, images[1].load, "cat", images[1].captions,
        images[1].split, images[1].source,
    )  # fmt: skip
    extra = coco_dataset(data_dir, n=N_IMAGES + 1).images[-1]
    images.append(extra)
    changed = ws.add_dataset(Dataset("coco", [counting(r) for r in images], classes=["cat", "dog"]))
    n_extra = 1 + len(extra.captions)
    # image 1 relabelled -> it and its 5 captions (they inherit label) are updated
    assert (changed.added, changed.updated) == (n_extra, 1 + 1 + len(images[1].captions))
    assert changed.unchanged == len(before) - changed.updated
    assert loads == [extra.id]  # metadata-only updates reuse the stored thumbnail
    items = ws.items()
    assert items.set_index("id").loc[f"coco/{images[0].id}#0", "text"] == "a new caption"
    assert items.set_index("id").loc[f"coco/{images[1].id}", "label"] == "cat"
    assert ws.datasets()[0].classes == ("cat", "dog")
    assert ws.datasets()[0].n_images == N_IMAGES + 1

    # a new thumbnail size rewrites (and re-decodes) every image
    resized = ws.add_dataset(Dataset("coco", images), thumbnail_size=32)
    assert resized.updated == N_IMAGES + 1
    assert max(Image.open(io.BytesIO(ws.thumbnail(f"coco/{extra.id}"))).size) == 32


def test_prefixed_ids_and_second_dataset(tmp_path: Path, data_dir: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    base = coco_dataset(data_dir, n=3, name="mini")
    prefixed = [
        ImageRecord(f"mini/{r.id}", r.content_hash, r.load, "x", r.captions[:1])
        for r in base.images
    ]
    ws.add_dataset(Dataset("mini", prefixed, classes=["x"]))
    ws.add_dataset(coco_dataset(data_dir, n=2, name="other"))
    assert ws.items(kind="image", dataset="mini")["id"].tolist() == [
        f"mini/{r.id}" for r in base.images
    ]
    assert [d.name for d in ws.datasets()] == ["mini", "other"]
    assert ws.items(kind="image")["dataset"].tolist() == ["mini"] * 3 + ["other"] * 2
    assert ws.remove_dataset("mini") == 6
    assert [d.name for d in ws.datasets()] == ["other"]
    assert set(ws.items()["dataset"]) == {"other"}
    with pytest.raises(UnknownDatasetError):
        ws.remove_dataset("mini")


def test_add_dataset_failure_writes_nothing(tmp_path: Path, data_dir: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.add_dataset(coco_dataset(data_dir, n=5))
    before = committed_state(ws)

    def broken():
        raise OSError("disk on fire")

    dataset = coco_dataset(data_dir, n=8)
    dataset.images[7] = ImageRecord("bad", "f" * 64, broken, source="bad.jpg")
    with pytest.raises(ValueError, match="could not load image 'bad'"):
        ws.add_dataset(dataset)
    assert_same_state(before, committed_state(ws))
    dup = Dataset("coco", [dataset.images[0], dataset.images[0]])
    with pytest.raises(ValueError, match="duplicate"):
        ws.add_dataset(dup)
    with pytest.raises(ValueError, match="thumbnail_size"):
        ws.add_dataset(dataset, thumbnail_size=0)
    assert_same_state(before, committed_state(ws))
    ws.add_dataset(coco_dataset(data_dir, n=8))  # and the next write works
    assert ws.datasets()[0].n_images == 8


def last_seq(ws: Workspace) -> int:
    return ws.summary()["last_commit"]["seq"]


def test_a_write_that_changes_nothing_commits_nothing(filled: tuple[Workspace, Dataset]) -> None:
    ws, dataset = filled
    items = ws.items()
    ids, vectors = ws.get_embeddings("enc-a", items["id"].tolist())
    seq, tables = last_seq(ws), sorted(p.name for p in (ws.path / LANCE_DIR).rglob("*"))

    again = ws.add_dataset(dataset)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(items))
    assert (again.n_images, again.n_texts) == (ws.datasets()[0].n_images, len(items) - N_IMAGES)
    put = ws.put_embeddings("enc-a", ids, items["content_hash"].tolist(), vectors)
    assert (put.items_written, put.vectors_written) == (0, 0)
    assert last_seq(ws) == seq  # no empty commits
    both = ws.add_dataset(
        dataset, embeddings=("enc-a", ids, items["content_hash"].tolist(), vectors)
    )
    assert both.unchanged == len(items) and last_seq(ws) == seq
    assert sorted(p.name for p in (ws.path / LANCE_DIR).rglob("*")) == tables

    # Other skipped entries are a change of the dataset's metadata: that one commits.
    ws.add_dataset(Dataset(dataset.name, dataset.images, skipped=[]))
    assert last_seq(ws) == seq + 1 and ws.datasets()[0].skipped == ()


def test_a_write_marked_unchanged_rolls_back_and_logs_no_commit(
    filled: tuple[Workspace, Dataset],
) -> None:
    """``transaction.write`` owns the roll-back of a write that changes nothing: the block
    marks it, its catalog changes are dropped and no commit is logged; a write that made a
    Lance version cannot be marked (dropping it would leave a version behind)."""
    from modalchorus.store import transaction
    from modalchorus.store.schema import ITEMS_SCHEMA, ITEMS_TABLE
    from modalchorus.store.tables import LanceTables

    ws, _ = filled
    catalog, tables = ws.path / CATALOG_FILE, LanceTables(ws.path / LANCE_DIR)
    before, lance = committed_state(ws), tree(ws.path / LANCE_DIR)
    with transaction.write(catalog, tables, "no-op", lock_timeout=5) as tx:
        tx.conn.execute("UPDATE datasets SET updated_at = 'later'")  # e.g. a timestamp
        assert not tx.unchanged
        tx.mark_unchanged()
        assert tx.unchanged
    assert_same_state(before, committed_state(ws))
    assert ws.datasets()[0].updated_at != "later"

    def delete_items(tx: transaction.WriteTransaction) -> None:
        tx.table(ITEMS_TABLE, ITEMS_SCHEMA).delete("kind = 'text'")

    refused = pytest.raises(RuntimeError, match=r"\(items\) cannot be marked unchanged")
    with refused, transaction.write(catalog, tables, "wrote", lock_timeout=5) as tx:
        delete_items(tx)
        tx.mark_unchanged()
    refused = pytest.raises(RuntimeError, match=r"\(items\) cannot be marked unchanged")
    with refused, transaction.write(catalog, tables, "wrote after", lock_timeout=5) as tx:
        tx.mark_unchanged()
        delete_items(tx)  # refused when the block ends
    assert_same_state(before, committed_state(ws))  # both rolled back
    with transaction.write(catalog, tables, "a real write", lock_timeout=5) as tx:
        delete_items(tx)
    assert last_seq(ws) == before["counts"][2] + 1
    assert ws.summary()["last_commit"]["op"] == "a real write"
    assert set(ws.items()["kind"]) == {"image"}
    assert tree(ws.path / LANCE_DIR) != lance


def test_renaming_a_set_to_its_own_name_commits_nothing(
    filled: tuple[Workspace, Dataset],
) -> None:
    ws, _ = filled
    cats = ws.create_set("cats", ws.items()["id"].tolist()[:2])
    seq = last_seq(ws)
    assert ws.rename_set(cats.id, " cats ") == cats
    assert last_seq(ws) == seq
    assert ws.rename_set(cats.id, "felines").name == "felines" and last_seq(ws) == seq + 1


def test_add_dataset_stores_items_and_embeddings_in_one_write(
    tmp_path: Path, data_dir: Path
) -> None:
    ws = Workspace.create(tmp_path / "ws")
    dataset = coco_dataset(data_dir, n=3)
    ids = [f"coco/{r.id}" for r in dataset.images]
    hashes = [r.content_hash for r in dataset.images]
    with pytest.raises(ValueError, match="NaN"):  # bad vectors: the items are not stored
        ws.add_dataset(dataset, embeddings=("enc-a", ids, hashes, np.full((3, 4), np.nan)))
    assert ws.datasets() == [] and ws.summary()["last_commit"] is None
    ws.add_dataset(dataset, embeddings=("enc-a", ids, hashes, random_vectors(3, dim=4)))
    assert ws.summary()["last_commit"]["seq"] == 1  # one commit for both
    assert ws.get_embeddings("enc-a", dataset="coco")[0] == ids
    with pytest.raises(ValueError, match="dimension"):  # checked inside the write
        ws.add_dataset(
            coco_dataset(data_dir, n=4),
            embeddings=("enc-a", ids, hashes, random_vectors(3, dim=5)),
        )
    assert ws.datasets()[0].n_images == 3 and last_seq(ws) == 1


# ------------------------------------------------------------------ embeddings


def test_put_get_embeddings_order(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    items = ws.items()
    ids, hashes = items["id"].tolist(), items["content_hash"].tolist()
    vectors = random_vectors(len(ids), seed=0)
    order = np.random.default_rng(1).permutation(len(ids))
    got_ids, got = ws.get_embeddings("enc-a", [ids[i] for i in order])
    assert got_ids == [ids[i] for i in order]
    np.testing.assert_array_equal(got, vectors[order])
    assert got.dtype == np.float32 and got.shape == (len(ids), DIM)

    img_ids, img_vecs = ws.get_embeddings("enc-a", kind="image")
    assert img_ids == ws.items(kind="image")["id"].tolist()
    np.testing.assert_array_equal(img_vecs, vectors[: len(img_ids)])
    all_ids, _ = ws.get_embeddings("enc-a")
    assert all_ids == ids
    repeat_ids, repeat = ws.get_embeddings("enc-a", [ids[3], ids[3]])
    np.testing.assert_array_equal(repeat, vectors[[3, 3]])
    assert ws.get_embeddings("enc-a", [])[1].shape == (0, DIM)

    with pytest.raises(UnknownEncoderError):
        ws.get_embeddings("enc-zzz")
    with pytest.raises(UnknownItemError, match="no embedding"):
        ws.get_embeddings("enc-a", [ids[0], "coco/nope"])
    with pytest.raises(UnknownDatasetError, match="nope"):
        ws.get_embeddings("enc-a", dataset="nope")
    with pytest.raises(ValueError, match="dimension mismatch"):  # even with nothing to write
        ws.put_embeddings("enc-a", [], [], np.zeros((0, DIM + 1), np.float32))
    with pytest.raises(ValueError, match="not a single string"):
        ws.get_embeddings("enc-a", ids[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a single string"):
        ws.cached_vectors("enc-a", hashes[0])  # type: ignore[arg-type]

    # a second encoder with another dimension, float64 input stored as float32
    v64 = np.random.default_rng(2).standard_normal((5, 7))
    result = ws.put_embeddings("hf:org/model@rev", ids[:5], hashes[:5], v64)
    assert (result.dim, result.items_written, result.vectors_written) == (7, 5, 5)
    np.testing.assert_array_equal(
        ws.get_embeddings("hf:org/model@rev", ids[:5])[1], v64.astype(np.float32)
    )
    assert ws.embedded_encoders() == ["enc-a", "hf:org/model@rev"]
    assert ws.summary()["encoders"]["hf:org/model@rev"] == {"dim": 7, "items": 5, "vectors": 5}


def test_upsert_semantics(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    items = ws.items()
    ids, hashes = items["id"].tolist(), items["content_hash"].tolist()
    vectors = random_vectors(len(ids))

    same = ws.put_embeddings("enc-a", ids, hashes, vectors)  # nothing new
    assert (same.items_written, same.vectors_written) == (0, 0)

    # item 0's content changed: new hash, new vector; the old hash stays cached
    new_vec = random_vectors(1, seed=5)
    ws.put_embeddings("enc-a", [ids[0]], ["new-hash"], new_vec)
    np.testing.assert_array_equal(ws.get_embeddings("enc-a", [ids[0]])[1], new_vec)
    cached = ws.cached_vectors("enc-a", [hashes[0], "new-hash"])
    np.testing.assert_array_equal(cached[hashes[0]], vectors[0])
    np.testing.assert_array_equal(cached["new-hash"], new_vec[0])

    # a later vector for the same content hash wins, for every item sharing it
    ws.put_embeddings("enc-a", ["concept/a", "concept/b"], ["shared", "shared"], vectors[[0, 0]])
    ws.put_embeddings("enc-a", ["concept/b"], ["shared"], vectors[1:2])
    _, got = ws.get_embeddings("enc-a", ["concept/a", "concept/b"])
    np.testing.assert_array_equal(got, vectors[[1, 1]])
    assert ws.summary()["encoders"]["enc-a"]["items"] == len(ids) + 2


def test_cache_hits_and_misses(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    items = ws.items()
    hashes = items["content_hash"].tolist()
    vectors = random_vectors(len(hashes))
    wanted = [hashes[7], "miss-1", hashes[2], hashes[7], "miss-2"]
    hits = ws.cached_vectors("enc-a", wanted)
    assert set(hits) == {hashes[7], hashes[2]}
    assert hits[hashes[7]].tobytes() == vectors[7].tobytes()  # bit-exact
    assert hits[hashes[2]].dtype == np.float32 and hits[hashes[2]].shape == (DIM,)
    assert ws.cached_vectors("enc-a", ["miss"]) == {}
    assert ws.cached_vectors("never-used", hashes) == {}
    assert ws.cached_vectors("enc-a", []) == {}
    # cache survives removing the dataset: re-adding does not need re-encoding
    ws.remove_dataset("coco")
    assert len(ws.cached_vectors("enc-a", hashes)) == len(set(hashes))
    ids, vecs = ws.get_embeddings("enc-a")  # no items left to list
    assert ids == [] and vecs.shape == (0, DIM)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.full((3, DIM), np.nan, dtype=np.float32), "NaN or inf"),
        (np.array([[np.inf] * DIM] * 3, dtype=np.float32), "NaN or inf"),
        (np.full((3, DIM), 1e300), "beyond float32's range"),
        (np.stack([np.full(DIM, 1e300), np.full(DIM, np.nan), np.zeros(DIM)]), "NaN or inf in 1"),
        (np.zeros(3 * DIM, dtype=np.float32), "2-D"),
        (np.zeros((3, DIM, 1), dtype=np.float32), "2-D"),
        (np.zeros((2, DIM), dtype=np.float32), "length mismatch"),
        (np.zeros((3, DIM + 1), dtype=np.float32), "dimension mismatch"),
        (np.zeros((3, DIM), dtype=np.int64), "floating-point"),
    ],
)
def test_invalid_embeddings_change_nothing(
    filled: tuple[Workspace, Dataset], vectors: np.ndarray, message: str
) -> None:
    ws, _ = filled
    items = ws.items()
    ids, hashes = items["id"].tolist()[:3], ["h1", "h2", "h3"]
    lance = lancedb.connect(str(ws.path / LANCE_DIR))
    versions = {n: lance.open_table(n).version for n in lance.list_tables().tables}
    before = committed_state(ws)
    with pytest.raises(ValueError, match=message):
        ws.put_embeddings("enc-a", ids, hashes, vectors)
    assert_same_state(before, committed_state(ws))
    assert {n: lance.open_table(n).version for n in lance.list_tables().tables} == versions


def test_one_content_hash_needs_one_vector(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    ids = ws.items()["id"].tolist()[:3]
    vectors = np.random.default_rng(5).normal(size=(3, DIM)).astype(np.float32)
    before = committed_state(ws)
    with pytest.raises(ValueError, match=f"{ids[0]!r} and {ids[2]!r} have the same content hash"):
        ws.put_embeddings("enc-a", ids, ["same", "other", "same"], vectors)
    assert_same_state(before, committed_state(ws))
    vectors[2] = vectors[0] * (1 + 1e-6)  # rounding, not a different vector
    ws.put_embeddings("enc-a", ids, ["same", "other", "same"], vectors)
    assert np.allclose(ws.cached_vectors("enc-a", ["same"])["same"], vectors[0])


def test_invalid_ids_change_nothing(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    before = committed_state(ws)
    vec = random_vectors(2)
    with pytest.raises(ValueError, match="unique"):
        ws.put_embeddings("enc-a", ["x", "x"], ["h1", "h2"], vec)
    with pytest.raises(ValueError, match="length mismatch"):
        ws.put_embeddings("enc-a", ["x", "y"], ["h1"], vec)
    with pytest.raises(ValueError, match="non-empty string"):
        ws.put_embeddings("enc-a", ["x", ""], ["h1", "h2"], vec)
    with pytest.raises(ValueError, match="encoder_id"):
        ws.put_embeddings("", ["x", "y"], ["h1", "h2"], vec)
    assert_same_state(before, committed_state(ws))


def test_uncommitted_lance_versions_are_invisible_then_discarded(
    filled: tuple[Workspace, Dataset],
) -> None:
    """What a dead writer leaves in Lance (new versions, new tables) never leaks."""
    ws, _ = filled
    before = committed_state(ws)
    lance = lancedb.connect(str(ws.path / LANCE_DIR))
    lance.open_table("items").delete("kind = 'text'")  # an uncommitted version
    ghost = cache_table(encoder_table_key("enc-new"))  # an uncommitted table
    lance.create_table(ghost, data=pa.table({"content_hash": ["ghost"], "vector": [[0.5] * DIM]}))
    assert_same_state(before, committed_state(Workspace.open(ws.path)))

    ws.put_embeddings("enc-new", ["coco/x"], ["real"], random_vectors(1))
    assert ws.cached_vectors("enc-new", ["ghost", "real"]).keys() == {"real"}
    tiny = ImageRecord("t0", "0" * 64, lambda: Image.new("RGB", (4, 4)))
    ws.add_dataset(Dataset("tiny", [tiny]))  # builds on the committed items version
    assert ws.items(dataset="coco").equals(before["items"].drop(columns="thumbnail"))


# ------------------------------------------------------------------ concurrency


def test_writer_lock_times_out_cleanly(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    before = committed_state(ws)
    blocker = sqlite3.connect(ws.path / CATALOG_FILE, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        impatient = Workspace.open(ws.path, lock_timeout=0.2)
        with pytest.raises(WorkspaceLockedError):
            impatient.put_embeddings("enc-a", ["x"], ["hx"], random_vectors(1))
        assert_same_state(before, committed_state(ws))  # readers are not blocked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    impatient.put_embeddings("enc-a", ["x"], ["hx"], random_vectors(1))


def test_concurrent_writers_do_not_lose_updates(filled: tuple[Workspace, Dataset]) -> None:
    ws, _ = filled
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        own = Workspace.open(ws.path)
        try:
            for k in range(4):
                ids = [f"t{t}/{k}/{j}" for j in range(50)]
                vecs = random_vectors(50, seed=100 * t + k)
                own.put_embeddings("enc-a", ids, [f"h-{i}" for i in ids], vecs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for t in range(2):
        for k in range(4):
            _, got = ws.get_embeddings("enc-a", [f"t{t}/{k}/{j}" for j in range(50)])
            np.testing.assert_array_equal(got, random_vectors(50, seed=100 * t + k))


# ------------------------------------------------------------------ crash safety


@dataclass
class CrashRun:
    """A writer process on its own copy of the filled workspace, SIGKILLed mid-write."""

    mode: str
    path: Path
    before: dict
    proc: subprocess.Popen
    kill_line: str = ""
    output_after_kill: str = ""


def _spawn(path: Path, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with (path.parent / "writer-stderr.txt").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(HELPER), str(path), mode],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )


def _wait_for(run: CrashRun, prefix: str) -> str:
    for line in run.proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    stderr = (run.path.parent / "writer-stderr.txt").read_text()[-3000:]
    raise AssertionError(f"{run.mode} writer exited before printing {prefix!r}: {stderr}")


def _kill_mid_write(run: CrashRun) -> None:
    """Wait for the writer's signal that it is inside a write, then SIGKILL it."""
    watchdog = threading.Timer(120, run.proc.kill)  # never hang the suite
    watchdog.start()
    try:
        if run.mode == "bulk":
            _wait_for(run, "COMMITTED 0")
            _wait_for(run, "WRITING 1")
            # Lance starts writing batch 1 (100k x 384 float32, ~150 MB of data files)
            run.kill_line = _wait_for(run, "LANCE_ADD")
            time.sleep(0.05)
        else:
            _wait_for(run, "STARTED")
            # all Lance data written, head rows updated, SQLite COMMIT not yet run
            run.kill_line = _wait_for(run, "LANCE_WRITTEN")
        assert run.proc.poll() is None, "the writer finished before it could be killed"
        os.kill(run.proc.pid, signal.SIGKILL)
        assert run.proc.wait(timeout=30) == -signal.SIGKILL
        run.output_after_kill = run.proc.stdout.read()
    finally:
        watchdog.cancel()
        if run.proc.poll() is None:
            run.proc.kill()
        run.proc.stdout.close()


@pytest.fixture(scope="module")
def crashed(filled_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One killed writer per mode, run concurrently (process start-up dominates)."""
    runs = {}
    for mode in ("hook-put", "hook-add", "bulk"):
        path = tmp_path_factory.mktemp(mode) / "ws"
        shutil.copytree(filled_template, path)
        before = committed_state(Workspace.open(path))
        runs[mode] = CrashRun(mode, path, before, _spawn(path, mode))
    with ThreadPoolExecutor(len(runs)) as pool:
        for future in [pool.submit(_kill_mid_write, run) for run in runs.values()]:
            future.result()
    return runs


def _lance_latest(path: Path, table: str) -> int:
    return lancedb.connect(str(path / LANCE_DIR)).open_table(table).version


@pytest.mark.parametrize("mode", ["hook-put", "hook-add"])
def test_kill_between_lance_write_and_commit(crashed: dict, mode: str) -> None:
    run: CrashRun = crashed[mode]
    staged = dict(kv.split("=") for kv in run.kill_line.split(" ", 1)[1].split(","))
    assert staged, "the killed write had written Lance versions"
    for table, version in staged.items():
        assert _lance_latest(run.path, table) == int(version)  # newer than the head

    reopened = Workspace.open(run.path)
    assert_same_state(run.before, committed_state(reopened))

    # the next write builds on the committed state, not on the dead writer's versions
    items = reopened.items()
    ids = items["id"].tolist()
    fresh = random_vectors(2, seed=7)
    reopened.put_embeddings("enc-a", ids[:2], ["fresh-0", "fresh-1"], fresh)
    tiny = ImageRecord("t0", "0" * 64, lambda: Image.new("RGB", (4, 4)))
    reopened.add_dataset(Dataset("tiny", [tiny]))
    _, got = reopened.get_embeddings("enc-a", ids)
    np.testing.assert_array_equal(got[:2], fresh)
    np.testing.assert_array_equal(got[2:], run.before["emb"]["enc-a"][1][2:])
    assert reopened.summary()["encoders"]["enc-a"]["items"] == len(ids)  # no crash/* ids
    assert reopened.cached_vectors("enc-a", ["crash-hash-0", "crash-hash-5"]) == {}
    assert [d.name for d in reopened.datasets()] == ["coco", "tiny"]  # no crashset
    assert set(reopened.items()["dataset"]) == {"coco", "tiny"}


def test_kill_during_bulk_write(crashed: dict) -> None:
    helper = _load_helper()
    run: CrashRun = crashed["bulk"]
    assert "COMMITTED 1" not in run.output_after_kill  # the kill landed inside batch 1
    n_before = len(run.before["items"])
    before_ids, before_vecs = run.before["emb"]["enc-a"]

    reopened = Workspace.open(run.path)
    assert len(reopened.items()) == n_before
    ids, vecs = reopened.get_embeddings("enc-a")
    assert ids == before_ids
    np.testing.assert_array_equal(vecs, before_vecs)
    n_embedded = reopened.summary()["encoders"]["enc-a"]["items"]
    assert n_embedded == n_before + helper.BULK_BATCH  # batch 0 committed, batch 1 absent
    sample = helper.bulk_ids(0)[::997]
    np.testing.assert_array_equal(
        reopened.get_embeddings("enc-a", sample)[1], helper.bulk_vectors(0, DIM)[::997]
    )
    with pytest.raises(UnknownItemError):
        reopened.get_embeddings("enc-a", helper.bulk_ids(1)[:1])
    assert reopened.cached_vectors("enc-a", helper.bulk_hashes(1)[:10]) == {}

    # a new write on top works and the dead writer's partial batch never shows up
    reopened.put_embeddings("enc-a", ["after/0"], ["after-0"], random_vectors(1, seed=3))
    assert reopened.summary()["encoders"]["enc-a"]["items"] == n_embedded + 1
    np.testing.assert_array_equal(
        reopened.get_embeddings("enc-a", ["after/0"])[1], random_vectors(1, seed=3)
    )
