"""Projections and sets in the workspace store: real LanceDB + SQLite, a real SIGKILL."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import lancedb
import numpy as np
import pytest
from PIL import Image

from modalchorus.data.types import Dataset, ImageRecord
from modalchorus.store import (
    DuplicateIntentError,
    ItemInUseError,
    NotFoundError,
    ProjectionInfo,
    SetInfo,
    SetInUseError,
    UnknownItemError,
    UnknownProjectionError,
    UnknownSetError,
    Workspace,
    WorkspaceLockedError,
)
from modalchorus.store.schema import ADDED_TABLES, CATALOG_FILE, LANCE_DIR

HELPER = Path(__file__).parent / "helpers" / "crash_writer.py"
N_IMAGES = 12
ENCODER = "enc-a"


def _load_helper():
    spec = importlib.util.spec_from_file_location("crash_writer", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_dataset(name: str = "toy", n: int = N_IMAGES) -> Dataset:
    """``n`` small synthetic images with two captions each (no files needed)."""
    records = []
    for i in range(n):
        pixels = np.full((16, 16, 3), (i * 19) % 256, dtype=np.uint8)
        records.append(
            ImageRecord(
                id=f"img{i}",
                content_hash=hashlib.sha256(pixels.tobytes()).hexdigest(),
                load=lambda pixels=pixels: Image.fromarray(pixels),
                label="grey",
                captions=(f"grey square {i}", f"another caption {i}"),
            )
        )
    return Dataset(name, records, classes=["grey"])


def coords_for(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 2)).astype(np.float32)


MODEL_FILES = {"mfm.safetensors": bytes(range(256)) * 40, "mfm.json": b'{"format": "x"}'}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the toy dataset (12 images + 24 captions) and one projection."""
    ws = Workspace.create(tmp_path_factory.mktemp("template") / "ws")
    ws.add_dataset(toy_dataset())
    ids = ws.items()["id"].tolist()
    ws.put_projection(
        _load_helper().PROJECTION,
        ENCODER,
        ids,
        coords_for(len(ids)),
        method="mfm",
        params={"perplexity": 30},
        metrics={"trustworthiness@10": 0.9},
        model_files=MODEL_FILES,
    )
    return ws.path


@pytest.fixture()
def ws(tmp_path: Path, template: Path) -> Workspace:
    """A private copy of ``template``."""
    shutil.copytree(template, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def lance_versions(ws: Workspace) -> dict[str, int]:
    lance = lancedb.connect(str(ws.path / LANCE_DIR))
    return {n: lance.open_table(n).version for n in lance.list_tables().tables}


def visible_state(ws: Workspace) -> dict:
    """Everything a reader can see of projections and sets, plus the last commit."""
    state: dict = {"infos": ws.projections(), "sets": ws.sets(), "data": {}}
    for info in state["infos"]:
        ids, coords = ws.get_projection(info.name)
        state["data"][info.name] = (ids, coords, ws.projection_model_files(info.name))
    summary = ws.summary()
    state["counts"] = (summary["projections"], summary["sets"], summary["last_commit"]["seq"])
    return state


def assert_same_state(a: dict, b: dict) -> None:
    assert a["infos"] == b["infos"]
    assert a["sets"] == b["sets"]
    assert a["data"].keys() == b["data"].keys()
    for name, (ids, coords, files) in a["data"].items():
        assert b["data"][name][0] == ids
        np.testing.assert_array_equal(b["data"][name][1], coords)
        assert b["data"][name][2] == files
    assert a["counts"] == b["counts"]


# ------------------------------------------------------------------ projections


def test_projection_round_trip_after_reopen(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    order = np.random.default_rng(3).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    coords = np.random.default_rng(4).standard_normal((len(ids), 2))  # float64 in
    info = ws.put_projection(
        "umap:toy:abc",
        "hf:org/model@rev",
        shuffled,
        coords,
        method="umap",
        params={"n_neighbors": np.int64(15), "range": (0.0, 1.0), "nested": {"a": [1, None]}},
        metrics={"knn@10": np.float32(0.5), "ok": True},
    )
    assert isinstance(info, ProjectionInfo)
    assert (info.name, info.encoder_id, info.method, info.n_items) == (
        "umap:toy:abc",
        "hf:org/model@rev",
        "umap",
        len(ids),
    )
    assert info.params == {"n_neighbors": 15, "range": [0.0, 1.0], "nested": {"a": [1, None]}}
    assert info.metrics == {"knn@10": 0.5, "ok": True} and info.model_files == ()
    assert info.created_at == info.updated_at

    reopened = Workspace.open(ws.path)
    got_ids, got = reopened.get_projection("umap:toy:abc")
    assert got_ids == shuffled  # stored order, not item order
    assert got.dtype == np.float32 and got.shape == (len(ids), 2) and got.flags.writeable
    np.testing.assert_array_equal(got, coords.astype(np.float32))
    assert reopened.projection_info("umap:toy:abc") == info
    assert reopened.projection_model_files("umap:toy:abc") == {}

    first = reopened.projections()[0]
    assert first.name == "mfm:crash:enc-a" and first.model_files == tuple(sorted(MODEL_FILES))
    assert reopened.projection_model_files(first.name) == MODEL_FILES
    assert [p.name for p in reopened.projections()] == [first.name, "umap:toy:abc"]
    assert [p.name for p in reopened.projections("hf:org/model@rev")] == ["umap:toy:abc"]
    assert reopened.projections("nobody") == []
    summary = reopened.summary()
    assert summary["projections"] == {
        "total": 2,
        "by_encoder": {ENCODER: 1, "hf:org/model@rev": 1},
    }
    assert summary["last_commit"]["op"].startswith("put_projection umap:toy:abc")


def test_projection_upsert_replaces_everything(ws: Workspace) -> None:
    name = "mfm:crash:enc-a"
    before = ws.projection_info(name)
    other_ids = ws.items(kind="image")["id"].tolist()
    ws.put_projection(
        "other",
        "enc-b",
        other_ids,
        coords_for(len(other_ids), 9),
        method="tsne",
        params={},
        metrics={},
        model_files={"m.bin": b"1"},
    )

    ids = ws.items(kind="text")["id"].tolist()[:5][::-1]
    new_files = {"mfm.safetensors": b"\x00" * 1000, "extra.txt": b""}
    info = ws.put_projection(
        name,
        "enc-c",
        ids,
        coords_for(5, 1),
        method="mfm",
        params={"v": 2},
        metrics={"m": 1.5},
        model_files=new_files,
    )
    assert (info.encoder_id, info.n_items, info.params, info.metrics) == (
        "enc-c",
        5,
        {"v": 2},
        {"m": 1.5},
    )
    assert info.created_at == before.created_at and info.updated_at > before.updated_at
    assert info.model_files == ("extra.txt", "mfm.safetensors")
    got_ids, got = ws.get_projection(name)
    assert got_ids == ids
    np.testing.assert_array_equal(got, coords_for(5, 1))
    assert ws.projection_model_files(name) == new_files

    # model_files=None drops the old files; the other projection is untouched
    info = ws.put_projection(
        name, "enc-c", ids[:2], coords_for(2, 2), method="mfm", params={}, metrics={}
    )
    assert info.model_files == () and ws.projection_model_files(name) == {}
    assert ws.get_projection(name)[0] == ids[:2]
    assert [p.name for p in ws.projections()] == [name, "other"]  # first-stored order kept
    assert ws.get_projection("other")[0] == other_ids
    np.testing.assert_array_equal(ws.get_projection("other")[1], coords_for(len(other_ids), 9))
    assert ws.projection_model_files("other") == {"m.bin": b"1"}
    assert [p.encoder_id for p in ws.projections()] == ["enc-c", "enc-b"]


def test_remove_projection(ws: Workspace) -> None:
    name = "mfm:crash:enc-a"
    ids = ws.items()["id"].tolist()
    ws.put_projection("keep", ENCODER, ids[:3], coords_for(3), method="pca", params={}, metrics={})
    ws.remove_projection(name)
    assert [p.name for p in ws.projections()] == ["keep"]
    for call in (
        ws.get_projection,
        ws.projection_info,
        ws.projection_model_files,
        ws.remove_projection,
    ):
        with pytest.raises(UnknownProjectionError, match="no projection 'mfm:crash:enc-a'"):
            call(name)
    with pytest.raises(KeyError):  # a NotFoundError, so a KeyError
        ws.get_projection("never")
    assert issubclass(UnknownProjectionError, NotFoundError)
    assert ws.summary()["projections"]["total"] == 1
    assert ws.get_projection("keep")[0] == ids[:3]

    # the name can be used again; no row of the removed projection comes back
    ws.put_projection(
        name,
        ENCODER,
        ids[5:7],
        coords_for(2, 5),
        method="mfm",
        params={},
        metrics={},
        model_files={"a": b"a"},
    )
    reopened = Workspace.open(ws.path)
    assert reopened.get_projection(name)[0] == ids[5:7]
    assert reopened.projection_model_files(name) == {"a": b"a"}


def _put_args(ws: Workspace) -> dict:
    ids = ws.items()["id"].tolist()[:4]
    return {
        "name": "p",
        "encoder_id": ENCODER,
        "item_ids": ids,
        "coords": coords_for(4),
        "method": "mfm",
        "params": {},
        "metrics": {},
        "model_files": None,
    }


BAD_PROJECTIONS = [
    ({"coords": np.zeros((4, 3), np.float32)}, ValueError, r"shape \(n, 2\)"),
    ({"coords": np.zeros(8, np.float32)}, ValueError, r"shape \(n, 2\)"),
    ({"coords": np.zeros((3, 2), np.float32)}, ValueError, "length mismatch"),
    ({"coords": np.full((4, 2), np.nan, np.float32)}, ValueError, "NaN or inf"),
    ({"coords": np.full((4, 2), 1e300)}, ValueError, "beyond float32's range"),
    ({"coords": np.zeros((4, 2), np.int64)}, ValueError, "floating-point"),
    ({"item_ids": "abcd"}, ValueError, "not a single string"),
    ({"item_ids": ["toy/img0"] * 4}, ValueError, "unique; 'toy/img0'"),
    ({"item_ids": [], "coords": np.zeros((0, 2), np.float32)}, ValueError, "at least one item"),
    ({"name": ""}, ValueError, "projection name"),
    ({"name": " p"}, ValueError, "whitespace"),
    ({"name": "x" * 256}, ValueError, "at most 255"),
    ({"encoder_id": ""}, ValueError, "encoder_id"),
    ({"method": ""}, ValueError, "method"),
    ({"params": {"a": float("nan")}}, ValueError, r"params\['a'\] is nan"),
    ({"metrics": {"k": {5: 0.1}}}, ValueError, r"metrics\['k'\]: dict keys must be strings"),
    ({"metrics": {"f": object()}}, ValueError, r"metrics\['f'\] is not JSON-serialisable"),
    ({"params": [1, 2]}, ValueError, "params must be a dict"),
    ({"model_files": {"../evil": b"x"}}, ValueError, "plain file name"),
    ({"model_files": {"a/b": b"x"}}, ValueError, "plain file name"),
    ({"model_files": {"a": "text"}}, ValueError, "must be bytes"),
    ({"item_ids": ["toy/img0", "nope/1", "toy/img1", "nope/2"]}, UnknownItemError, "'nope/1'"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_PROJECTIONS)
def test_invalid_projection_changes_nothing(
    ws: Workspace, change: dict, error: type[Exception], message: str
) -> None:
    versions = lance_versions(ws)
    before = visible_state(ws)
    args = _put_args(ws) | change
    with pytest.raises(error, match=message):
        ws.put_projection(**args)
    assert_same_state(before, visible_state(ws))
    assert lance_versions(ws) == versions
    if "name" not in change:  # replacing an existing projection leaves it intact too
        with pytest.raises(error, match=message):
            ws.put_projection(**(args | {"name": "mfm:crash:enc-a"}))
        assert_same_state(before, visible_state(ws))


def test_unknown_projection_items_are_named(ws: Workspace) -> None:
    before = visible_state(ws)
    ids = ws.items()["id"].tolist()[:3] + [f"ghost/{i}" for i in range(8)]
    with pytest.raises(UnknownItemError) as err:
        ws.put_projection(
            "p", ENCODER, ids, coords_for(len(ids)), method="m", params={}, metrics={}
        )
    message = str(err.value)
    assert message == (  # the first three, why they are unknown, and how many more
        "8 of 11 item ids are unknown: 'ghost/0', 'ghost/1', 'ghost/2' "
        "(the workspace has no dataset 'ghost'); and 5 more"
    )
    assert_same_state(before, visible_state(ws))
    # ids of a removed dataset are no longer items
    ws.remove_dataset("toy")
    with pytest.raises(UnknownItemError):
        ws.put_projection("p", ENCODER, ids[:3], coords_for(3), method="m", params={}, metrics={})


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["toy/img0", "toy/nope"], "unknown item id 'toy/nope' (dataset 'toy' has no item"),
        (["ghost/1"], "unknown item id 'ghost/1' (the workspace has no dataset 'ghost')"),
        (["img0"], "unknown item id 'img0' (not an item id: item ids are '<dataset>/"),
        (  # each group of named ids with its reason, in the order asked for
            ["toy/img0", "ghost/1", "ghost/2", "toy/img99", "ghost/3", "x"],
            "5 of 6 item ids are unknown: 'ghost/1', 'ghost/2' (the workspace has no dataset "
            "'ghost'); 'toy/img99' (dataset 'toy' has no item with this id); and 2 more",
        ),
    ],
)
def test_unknown_set_members_are_named_with_the_reason(
    ws: Workspace, ids: list[str], message: str
) -> None:
    """Sets span datasets, so an id is unknown because its dataset lacks it, because no
    dataset has its prefix, or because it is no item id at all."""
    cats = ws.create_set("cats", ["toy/img0"])
    before = visible_state(ws)
    with pytest.raises(UnknownItemError) as err:
        ws.create_set("s", ids)
    assert str(err.value).startswith(message)
    with pytest.raises(UnknownItemError) as err:
        ws.update_set_items(cats.id, ids)
    assert str(err.value).startswith(message)
    assert_same_state(before, visible_state(ws))  # nothing written, no commit


# ------------------------------------------------------------------ sets


def test_sets_crud_and_persistence(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    assert ws.sets() == []
    cats = ws.create_set("  cats ", ids[:3] + [ids[0]], color=" #e45756", description="meow")
    assert isinstance(cats, SetInfo)
    assert (cats.name, cats.item_ids, cats.color, cats.description) == (
        "cats",
        ids[:3],
        "#e45756",
        "meow",
    )
    assert cats.n_items == 3 and cats.created_at == cats.updated_at
    dogs = ws.create_set("dogs", ids[10:2:-1])
    assert dogs.id > cats.id and dogs.color is None and dogs.description == ""
    assert dogs.item_ids == ids[10:2:-1]  # order kept

    reopened = Workspace.open(ws.path)
    assert reopened.sets() == [cats, dogs]
    assert reopened.get_set(cats.id) == cats

    renamed = reopened.rename_set(cats.id, " felines ")
    assert renamed.name == "felines" and renamed.item_ids == cats.item_ids
    assert renamed.created_at == cats.created_at and renamed.updated_at > cats.updated_at
    same = reopened.rename_set(cats.id, " felines")  # its own name: fine, and a no-op
    assert same == renamed and same.updated_at == renamed.updated_at
    updated = reopened.update_set_items(dogs.id, [ids[20], ids[1], ids[20]])
    assert updated.item_ids == [ids[20], ids[1]] and updated.name == "dogs"

    reopened.delete_set(cats.id)
    again = Workspace.open(ws.path)
    assert [s.name for s in again.sets()] == ["dogs"]
    assert again.get_set(dogs.id).item_ids == [ids[20], ids[1]]
    third = again.create_set("felines", ids[:1])  # the freed name can be reused
    assert third.id > dogs.id  # ids are never reused
    assert again.summary()["sets"] == {"total": 2}
    assert again.summary()["last_commit"]["op"] == "create_set felines"
    assert again.summary()["projections"]["total"] == 1


def test_set_errors_change_nothing(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    cats = ws.create_set("cats", ids[:2])
    before = visible_state(ws)
    with pytest.raises(ValueError, match="a set needs at least one item"):
        ws.create_set("empty", [])
    with pytest.raises(ValueError, match="already exists"):
        ws.create_set(" cats", ids[:1])
    with pytest.raises(ValueError, match="must not be empty"):
        ws.create_set("   ", ids[:1])
    with pytest.raises(ValueError, match="at most 100"):
        ws.create_set("x" * 101, ids[:1])
    for color in ("", "red", "#12345", "#e45756; x"):
        with pytest.raises(ValueError, match="color must be a hex colour"):
            ws.create_set("c", ids[:1], color=color)
    with pytest.raises(ValueError, match="control characters"):
        ws.create_set("a\x00b", ids[:1])
    with pytest.raises(ValueError, match="no visible character"):
        ws.create_set(" \u200b\u2060 ", ids[:1])
    with pytest.raises(ValueError, match="description"):
        ws.create_set("c", ids[:1], description=None)  # type: ignore[arg-type]
    with pytest.raises(UnknownItemError, match="'ghost/1'"):
        ws.create_set("ghosts", [ids[0], "ghost/1"])
    dogs_id = cats.id + 1
    for call, args in [
        (ws.get_set, (dogs_id,)),
        (ws.rename_set, (dogs_id, "x")),
        (ws.update_set_items, (dogs_id, ids[:1])),
        (ws.delete_set, (dogs_id,)),
    ]:
        with pytest.raises(UnknownSetError, match=f"no set with id {dogs_id}"):
            call(*args)
    with pytest.raises(KeyError):
        ws.get_set(999)
    with pytest.raises(ValueError, match="set id must be an int"):
        ws.get_set("1")  # type: ignore[arg-type]
    ws.create_set("dogs", ids[2:4])
    after_dogs = visible_state(ws)
    with pytest.raises(ValueError, match="'dogs' already exists"):
        ws.rename_set(cats.id, "dogs")
    with pytest.raises(ValueError, match="at least one item"):
        ws.update_set_items(cats.id, [])
    with pytest.raises(UnknownItemError):
        ws.update_set_items(cats.id, ["ghost/1"])
    assert_same_state(after_dogs, visible_state(ws))
    assert ws.get_set(cats.id) == before["sets"][0]
    assert ws.get_set(np.int64(cats.id)) == before["sets"][0]
    with pytest.raises(UnknownSetError, match="no set with id 99999999999999999999"):
        ws.delete_set(99999999999999999999)  # beyond SQLite's integers: no such set
    assert ws.create_set("x" * 100, ids[:1]).name == "x" * 100


def test_sets_named_by_stored_intents(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    by_name = ws.create_set("cats", ids[:2])
    by_id = ws.create_set("dogs", ids[2:4])
    intent = ws.create_intent({"type": "set-set", "a": "cats", "b": by_id.id})
    ws.rename_set(by_name.id, "felines")  # the intent follows the new name
    assert ws.intents()[0].spec == {"type": "set-set", "a": "felines", "b": by_id.id}
    before = visible_state(ws)
    for set_id, name in ((by_name.id, "felines"), (by_id.id, "dogs")):
        with pytest.raises(SetInUseError, match=f"#{intent.id} name set '{name}'"):
            ws.delete_set(set_id)
    assert_same_state(before, visible_state(ws))
    ws.delete_intent(intent.id)
    ws.delete_set(by_name.id)
    assert [s.name for s in ws.sets()] == ["dogs"]
    with pytest.raises(ValueError, match="item_ids is empty"):
        ws.remove_items([])
    with pytest.raises(ValueError, match="not a single string"):
        ws.remove_items(ids[0])  # type: ignore[arg-type]


def test_unknown_members_are_named_before_a_taken_name(ws: Workspace) -> None:
    """Unknown item ids come before a taken name (the HTTP API's 404 before 409)."""
    ids = ws.items()["id"].tolist()
    ws.create_set("cats", ids[:2])
    before = visible_state(ws)
    with pytest.raises(UnknownItemError, match="'ghost/1'"):
        ws.create_set("cats", ["ghost/1"])
    assert_same_state(before, visible_state(ws))


def test_the_same_intent_is_stored_once(ws: Workspace) -> None:
    spec = {"type": "set-set", "a": "cats", "b": [1, "x"], "strength": 1.0}
    first = ws.create_intent(spec)
    before = visible_state(ws)
    for again in (spec, {**spec, "strength": 1}, dict(reversed(spec.items()))):
        with pytest.raises(DuplicateIntentError, match=f"#{first.id}") as caught:
            ws.create_intent(again)
        assert caught.value.existing == first.id
    assert_same_state(before, visible_state(ws))
    with Workspace.open(ws.path) as reopened:
        assert [i.id for i in reopened.intents()] == [first.id]
    ws.create_intent({**spec, "strength": 2.0})  # another strength: another intent
    ws.create_intent({**spec, "b": ["x", 1]})  # other members
    assert len(ws.intents()) == 3


def test_add_to_set_creates_or_extends_in_one_write(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    made = ws.add_to_set(" tagged ", ids[:2])
    assert (made.name, made.item_ids) == ("tagged", ids[:2])
    grown = ws.add_to_set("tagged", [ids[1], ids[3], ids[2]])
    assert grown.id == made.id and grown.item_ids == [ids[0], ids[1], ids[3], ids[2]]
    before = visible_state(ws)
    assert ws.add_to_set("tagged", ids[:1]) == grown  # nothing new: nothing written
    with pytest.raises(UnknownItemError):
        ws.add_to_set("tagged", ["ghost/1"])
    with pytest.raises(ValueError, match="control characters"):
        ws.add_to_set("a\x01", ids[:1])
    assert_same_state(before, visible_state(ws))
    # two writers tagging at once both keep their items
    threads = [threading.Thread(target=ws.add_to_set, args=("both", [i])) for i in ids[4:10]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (both,) = [s for s in ws.sets() if s.name == "both"]
    assert sorted(both.item_ids) == sorted(ids[4:10])


# ------------------------------------------------------------------ removing items


def test_remove_items_takes_captions_set_members_and_counts(ws: Workspace) -> None:
    items = ws.items()
    images = items[items["kind"] == "image"]["id"].tolist()
    captions = items[items["image_id"] == images[0]]["id"].tolist()
    ws.put_embeddings(
        ENCODER,
        items["id"].tolist(),
        items["content_hash"].tolist(),
        np.eye(len(items), 8, dtype=np.float32) + 1.0,
    )
    both = ws.create_set("both", [images[0], captions[0], images[1]])
    removed = ws.remove_items([images[0]])
    assert removed == [images[0], *captions]
    left = ws.items()["id"].tolist()
    assert not set(removed) & set(left) and len(left) == len(items) - 3
    info = ws.dataset("toy")
    assert (info.n_images, info.n_texts) == (N_IMAGES - 1, 2 * N_IMAGES - 2)
    assert ws.get_set(both.id).item_ids == [images[1]]
    assert ws.get_embeddings(ENCODER)[0] == left  # the vectors stay, the items do not
    with pytest.raises(UnknownItemError, match=repr(images[0])):
        ws.remove_items([images[0]])
    reopened = Workspace.open(ws.path)
    assert reopened.items()["id"].tolist() == left


def test_items_in_use_are_not_removed(ws: Workspace) -> None:
    ids = ws.items()["id"].tolist()
    ws.create_set("one", [ids[5]])
    ws.create_intent({"type": "point-set", "point": ids[3], "target": "one"})
    before = visible_state(ws)
    items_before = ws.items()
    with pytest.raises(ItemInUseError, match="intents #1"):
        ws.remove_items([ids[3]])
    with pytest.raises(ItemInUseError, match="sets 'one' empty"):
        ws.remove_items([ids[4], ids[5]])
    with pytest.raises(ValueError, match="at least one item"):
        ws.remove_items([])
    assert_same_state(before, visible_state(ws))
    assert ws.items().equals(items_before)


def test_removing_a_dataset_leaves_no_set_or_intent_pointing_at_it(ws: Workspace) -> None:
    ws.add_dataset(toy_dataset("other", n=3))
    toy = ws.items(dataset="toy")["id"].tolist()
    other = ws.items(dataset="other")["id"].tolist()
    mixed = ws.create_set("mixed", [toy[0], other[0], toy[1]])
    only_other = ws.create_set("only other", other[:2])
    intent = ws.create_intent({"type": "point-set", "point": other[2], "target": "mixed"})

    before = visible_state(ws)
    with pytest.raises(ItemInUseError, match=f"intents #{intent.id} name dataset 'other'"):
        ws.remove_dataset("other")
    assert_same_state(before, visible_state(ws))
    ws.delete_intent(intent.id)
    before = visible_state(ws)
    with pytest.raises(ItemInUseError, match="leave sets 'only other' empty"):
        ws.remove_dataset("other")
    assert_same_state(before, visible_state(ws))
    assert ws.items(dataset="other")["id"].tolist() == other

    ws.delete_set(only_other.id)
    assert ws.remove_dataset("other") == len(other)
    assert ws.get_set(mixed.id).item_ids == [toy[0], toy[1]]
    assert [d.name for d in ws.datasets()] == ["toy"]


# ------------------------------------------------------------------ older workspaces


def test_open_workspace_made_before_projections_and_sets(ws: Workspace) -> None:
    """Dropping the new catalog tables gives the catalog the current code's v1 shape."""
    items = ws.items()
    con = sqlite3.connect(ws.path / CATALOG_FILE, isolation_level=None)
    for table in ADDED_TABLES:
        con.execute(f"DROP TABLE {table}")
    tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not tables & set(ADDED_TABLES)

    # while another writer holds the lock, opening waits, then fails cleanly
    con.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WorkspaceLockedError):
            Workspace.open(ws.path, lock_timeout=0.2)
    finally:
        con.execute("ROLLBACK")
    tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not tables & set(ADDED_TABLES)

    old = Workspace.open(ws.path)
    tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert tables >= set(ADDED_TABLES)
    assert old.items().equals(items)
    assert old.sets() == [] and old.projections() == []
    assert old.summary()["projections"] == {"total": 0, "by_encoder": {}}
    ids = items["id"].tolist()
    s = old.create_set("after upgrade", ids[:2])
    old.put_projection("p", ENCODER, ids[:2], coords_for(2), method="m", params={}, metrics={})
    reopened = Workspace.open(ws.path)  # nothing missing now: opens without the lock
    assert reopened.sets() == [s] and reopened.get_projection("p")[0] == ids[:2]


# ------------------------------------------------------------------ crash safety


def test_kill_between_lance_write_and_commit_of_put_projection(ws: Workspace) -> None:
    helper = _load_helper()
    ws.create_set("cats", ws.items()["id"].tolist()[:2])
    before = visible_state(ws)
    head_before = lance_versions(ws)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    stderr_path = ws.path.parent / "writer-stderr.txt"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HELPER), str(ws.path), "hook-projection"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    watchdog = threading.Timer(120, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        kill_line = ""
        for line in proc.stdout:
            if line.startswith("LANCE_WRITTEN"):
                kill_line = line.strip()
                break
        assert kill_line, f"writer exited early: {stderr_path.read_text()[-3000:]}"
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()

    staged = dict(kv.split("=") for kv in kill_line.split(" ", 1)[1].split(","))
    assert set(staged) == {"projection_coords", "projection_files"}
    after_kill = lance_versions(ws)
    for table, version in staged.items():
        assert after_kill[table] == int(version) > head_before[table]  # written, not committed

    reopened = Workspace.open(ws.path)
    assert_same_state(before, visible_state(reopened))
    info = reopened.projection_info(helper.PROJECTION)
    assert (
        info.method == "mfm" and reopened.projection_model_files(helper.PROJECTION) == MODEL_FILES
    )

    # the next write builds on the committed state, not on the dead writer's versions
    ids = reopened.items()["id"].tolist()
    reopened.put_projection(
        helper.PROJECTION,
        ENCODER,
        ids[:4],
        coords_for(4, 8),
        method="pca",
        params={},
        metrics={},
        model_files={"new": b"n"},
    )
    got_ids, got = reopened.get_projection(helper.PROJECTION)
    assert got_ids == ids[:4]
    np.testing.assert_array_equal(got, coords_for(4, 8))
    assert reopened.projection_model_files(helper.PROJECTION) == {"new": b"n"}
    assert reopened.sets() == before["sets"]
