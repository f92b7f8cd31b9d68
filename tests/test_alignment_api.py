"""Alignment over HTTP: intents, a real adapter run as a job, before/after, undo/redo, export.

A real ``modalchorus serve`` process serves a private copy of the small test workspace
(runs change which embedding version is active).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser.support import CIFAR, IMAGES_PER_CLASS, served_client, workspace_copy

from modalchorus.server.frames import decode_frame

N_CIFAR = 10 * IMAGES_PER_CLASS + 50
UNKNOWN_POINT = {"type": "point-set", "point": "cifar10-demo/x", "target": "cat prompts"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return workspace_copy(tmp_path_factory, "alignment")


@pytest.fixture(scope="module")
def client(workspace: Path):
    with served_client(workspace, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def encoder(client: httpx.Client) -> str:
    return client.get("/api/settings").json()["encoders"][0]


def points(client, encoder: str, version: str | None = None) -> tuple[dict, dict]:
    params = {"dataset": CIFAR, "encoder": encoder, "method": "mfm"}
    if version is not None:
        params["version"] = version
    response = client.get("/api/projection/points", params=params)
    assert response.status_code == 200, response.text
    header, cols = decode_frame(response.content)
    return header["meta"], cols


def message(response: httpx.Response) -> str:
    return json.dumps(response.json()["detail"])


def follow(client: httpx.Client, job_id: str) -> dict:
    last = None
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
    assert last is not None
    return last


@pytest.fixture(scope="module")
def cat_and_dog(client, encoder) -> dict[str, int]:
    """Sets "cat prompts" and "dog images" made from the CIFAR view."""
    _, cols = points(client, encoder)
    names = points(client, encoder)[0]["label_names"]
    cat, dog = names.index("cat"), names.index("dog")
    ids = np.array(cols["id"])
    cats = ids[(cols["kind"] == 2) & (cols["label"] == cat)].tolist()
    dogs = ids[(cols["kind"] == 0) & (cols["label"] == dog)].tolist()
    made = {}
    for name, members in (("cat prompts", cats), ("dog images", dogs)):
        answer = client.post("/api/sets", json={"name": name, "item_ids": members})
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]
    return made


def test_intents_are_stored_listed_and_deleted(client, cat_and_dog) -> None:
    spec = {"type": "set-set", "a": "cat prompts", "b": cat_and_dog["dog images"]}
    created = client.post("/api/intents", json=spec)
    assert created.status_code == 201, created.text
    intent = created.json()
    assert intent["spec"] == {**spec, "mode": "align", "strength": 1.0}
    assert intent["id"] in [i["id"] for i in client.get("/api/intents").json()]
    assert client.delete(f"/api/intents/{intent['id']}").status_code == 204
    gone = client.delete(f"/api/intents/{intent['id']}")
    assert gone.status_code == 404 and str(intent["id"]) in message(gone)


@pytest.mark.parametrize(
    ("spec", "status", "needle"),
    [
        ({"type": "nope", "a": "x", "b": "y"}, 422, "type"),
        ({"type": "set-set", "a": "cat prompts", "b": "cat prompts"}, 422, "same items"),
        (
            {"type": "set-set", "a": "cat prompts", "b": "no such set"},
            404,
            "the intent set b: the workspace has no set named 'no such set'",
        ),
        (
            {"type": "set-set", "a": 99999, "b": "cat prompts"},
            404,
            "the intent set a: the workspace has no set with id 99999",
        ),
        # unknown ids in the body are a 404 naming them, items as sets
        (UNKNOWN_POINT, 404, "unknown item id 'cifar10-demo/x'"),
        (
            {"type": "set-set", "a": ["cifar10-demo/y", "cifar10-demo/z"], "b": "cat prompts"},
            404,
            "'cifar10-demo/y', 'cifar10-demo/z'",
        ),
        ({"type": "point-set", "point": "p", "target": "cat prompts", "strength": 0}, 422, "0"),
        ({"type": "set-set", "a": [], "b": "cat prompts"}, 422, "empty"),
        # a JSON boolean is no set id (it was read as set 1) and no strength
        ({"type": "point-set", "point": "p", "target": True}, 422, "got true"),
        ({"type": "set-set", "a": "cat prompts", "b": False}, 422, "got false"),
        ({"type": "set-set", "a": "x", "b": "y", "strength": True}, 422, "strength"),
    ],
)
def test_bad_intents_are_refused_with_a_message(client, cat_and_dog, spec, status, needle):
    before = len(client.get("/api/intents").json())
    response = client.post("/api/intents", json=spec)
    assert response.status_code == status, response.text
    assert needle in message(response)
    if "got" in needle:  # the field is named
        field = next(k for k, v in spec.items() if isinstance(v, bool))
        assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
    assert len(client.get("/api/intents").json()) == before


def test_an_intent_too_large_to_store_is_refused_with_a_way_out(client, cat_and_dog) -> None:
    sets = {s["name"]: s["item_ids"] for s in client.get("/api/sets").json()}
    dogs = sets["dog images"]
    huge = dogs * (40_000 // len(dogs) + 1)  # a selection of ~40,000 points, listed inline
    before = len(client.get("/api/intents").json())
    response = client.post("/api/intents", json={"type": "set-set", "a": huge, "b": "cat prompts"})
    assert response.status_code == 422, response.text
    assert "over the 1,000,000-byte limit" in message(response)
    assert "save large selections as a set" in message(response)
    assert len(client.get("/api/intents").json()) == before


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({}, 422, "no intents"),
        ({"intent_ids": [99999]}, 404, "99999"),
        ({"intent_ids": [True]}, 422, "expected an integer id, got true"),
        ({"intents": [UNKNOWN_POINT]}, 404, "intent 1: unknown item id 'cifar10-demo/x'"),
        ({"intent_ids": [], "encoder": "nope"}, 422, "no intents"),
        ({"scope": "everything"}, 422, "scope"),
        ({"params": {"no_such_knob": 1}}, 422, "unknown tuner parameter 'no_such_knob'"),
        ({"params": {"progress": "x"}}, 422, "unknown tuner parameter 'progress'"),
        ({"params": {"scope": "lora"}}, 422, "unknown tuner parameter 'scope'"),
        ({"params": {"steps": 0}}, 422, "steps must be 'auto' or an integer in [1, 1,000,000]"),
        ({"params": {"steps": 1.9}}, 422, "got 1.9"),
        ({"params": {"temperature": "abc"}}, 422, "temperature must be a finite number > 0"),
        ({"params": {"adapter_rank": 10**9}}, 422, "adapter_rank must be null or an integer"),
        ({"params": {"hold_anchors": "no"}}, 422, "hold_anchors must be true or false"),
        ({"params": {"preserve_weight": -1}}, 422, "preserve_weight"),
        ({"params": {"learning_rate": 1e30}}, 422, "learning_rate"),
        ({"encoder": "nope"}, 404, "nope"),
    ],
)
def test_bad_run_requests_start_nothing(client, encoder, cat_and_dog, body, status, needle):
    inline = [{"type": "set-set", "a": "cat prompts", "b": "dog images", "mode": "separate"}]
    request = {"encoder": encoder, "intents": inline, **body}
    if body == {} or "intent_ids" in body:
        request["intents"] = []
    jobs = len(client.get("/api/jobs").json())
    response = client.post("/api/alignment/runs", json=request)
    assert response.status_code == status, response.text
    assert needle in message(response)
    if "params" in body:
        assert response.json()["detail"][0]["loc"] == ["body", "params"]
    assert len(client.get("/api/jobs").json()) == jobs


def test_sets_named_by_intents_follow_renames_and_are_not_deleted(client, cat_and_dog) -> None:
    cats = client.get(f"/api/sets/{cat_and_dog['cat prompts']}").json()["item_ids"]
    pets = client.post("/api/sets", json={"name": "pets", "item_ids": cats}).json()
    spec = {"type": "set-set", "a": "pets", "b": cat_and_dog["dog images"]}
    intent = client.post("/api/intents", json=spec).json()
    renamed = client.patch(f"/api/sets/{pets['id']}", json={"name": "house pets"})
    assert renamed.status_code == 200, renamed.text
    stored = {i["id"]: i["spec"] for i in client.get("/api/intents").json()}
    assert stored[intent["id"]]["a"] == "house pets"
    refused = client.delete(f"/api/sets/{pets['id']}")
    assert refused.status_code == 409 and f"#{intent['id']}" in message(refused)
    assert client.get(f"/api/sets/{pets['id']}").json()["item_ids"] == cats
    assert client.delete(f"/api/intents/{intent['id']}").status_code == 204
    assert client.delete(f"/api/sets/{pets['id']}").status_code == 204


def test_a_run_moves_points_in_the_same_frame_and_undo_redo_switch_versions(
    client, encoder, workspace, cat_and_dog
) -> None:
    meta_before, cols_before = points(client, encoder)
    assert meta_before["encoder"] == encoder
    point = cols_before["id"][int(np.flatnonzero(cols_before["kind"] == 0)[0])]
    spec = {"type": "point-set", "point": point, "target": "cat prompts", "strength": 2.0}
    intent = client.post("/api/intents", json=spec).json()
    started = client.post(
        "/api/alignment/runs",
        json={"encoder": encoder, "intent_ids": [intent["id"]], "scope": "adapter"},
    )
    assert started.status_code == 202, started.text
    job = follow(client, started.json()["id"])
    assert job["status"] == "done", job
    run = client.get(f"/api/alignment/runs/{job['result']}").json()
    assert run["parent_encoder_id"] == encoder and run["encoder_id"] != encoder
    assert run["active"] and run["scope"] == "adapter"
    assert CIFAR in run["metrics_before"] and CIFAR in run["metrics_after"]
    assert 0 <= run["metrics_after"][CIFAR]["accuracy"] <= 1
    assert run["moved"] and run["moved"][0]["distance"] > 0

    history = client.get("/api/alignment/runs", params={"encoder": encoder}).json()
    assert history["active_encoder_id"] == run["encoder_id"]
    assert history["can_undo"] and not history["can_redo"]
    assert client.get("/api/settings").json()["encoders"] == [encoder]  # the base id only

    # The views follow the new version; the parent's layout is still there to compare.
    meta_after, cols_after = points(client, encoder)
    assert meta_after["encoder"] == run["encoder_id"] and cols_after["id"] == cols_before["id"]
    meta_parent, cols_parent = points(client, encoder, version=run["parent_encoder_id"])
    assert meta_parent["encoder"] == encoder
    np.testing.assert_array_equal(cols_parent["x"], cols_before["x"])
    shift = np.hypot(cols_after["x"] - cols_before["x"], cols_after["y"] - cols_before["y"])
    row = cols_after["id"].index(point)
    assert shift[row] > np.median(shift)  # the point of the intent moved more than most
    metrics = client.get("/api/metrics/task", params={"dataset": CIFAR, "encoder": encoder})
    assert metrics.json()["accuracy"] == pytest.approx(run["metrics_after"][CIFAR]["accuracy"])
    axis = client.post(
        "/api/concept-axis",
        json={"dataset": CIFAR, "encoder": encoder, "concept_a": "cat", "concept_b": "dog"},
    )
    assert axis.status_code == 200, axis.text  # concepts through the aligned encoder

    # Added text under the aligned version; after undo it is embedded for the base too.
    added = client.post(
        "/api/items/texts", json={"dataset": CIFAR, "encoder": encoder, "texts": ["a cat toy"]}
    ).json()
    assert added["encoder"] == run["encoder_id"] and added["items"][0]["x"] is not None

    undone = client.post("/api/alignment/undo", json={"encoder": encoder}).json()
    assert undone["run"]["id"] == run["id"] and not undone["run"]["active"]
    assert undone["history"]["active_encoder_id"] == encoder
    assert undone["history"]["can_redo"] and not undone["history"]["can_undo"]
    meta, cols = points(client, encoder)
    assert meta["encoder"] == encoder and added["items"][0]["id"] in cols["id"]
    nothing = client.post("/api/alignment/undo", json={"encoder": encoder}).json()
    assert nothing["run"] is None
    redone = client.post("/api/alignment/redo", json={"encoder": encoder}).json()
    assert redone["history"]["active_encoder_id"] == run["encoder_id"]
    assert points(client, encoder)[0]["encoder"] == run["encoder_id"]

    # Export: a zip that the encoder registry loads back as the aligned encoder.
    exported = client.get(f"/api/alignment/runs/{run['id']}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    folder = workspace.parent / "exported"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        assert sorted(archive.namelist()) == ["alignment.json", "alignment.safetensors"]
        archive.extractall(folder)
    from modalchorus.encoders import create_encoder
    from modalchorus.store import Workspace

    aligned = create_encoder(f"aligned:{folder}", device="cpu")
    assert aligned.id == run["encoder_id"]
    prompt_row = int(np.flatnonzero(cols_after["kind"] == 2)[0])
    prompt_id = cols_after["id"][prompt_row]
    item = client.get(f"/api/items/{prompt_id}", params={"encoder": encoder}).json()
    with Workspace.open(workspace) as ws:
        _, stored = ws.get_embeddings(run["encoder_id"], [prompt_id])
    np.testing.assert_allclose(aligned.encode_texts([item["text"]]), stored, atol=1e-5)


def test_unknown_runs_and_foreign_versions(client, encoder) -> None:
    assert client.get("/api/alignment/runs/99999").status_code == 404
    missing = client.get("/api/alignment/runs/99999/export")
    assert missing.status_code == 404 and "99999" in message(missing)
    other = client.get(
        "/api/projection/points",
        params={"dataset": CIFAR, "encoder": encoder, "version": "other@1"},
    )
    assert other.status_code == 422 and "other@1" in message(other)
    assert client.get("/api/alignment/runs", params={"encoder": "nope"}).status_code == 404
    assert client.post("/api/alignment/undo", json={"encoder": "nope"}).status_code == 404


def test_a_cancelled_run_changes_nothing(client, encoder, cat_and_dog) -> None:
    history = client.get("/api/alignment/runs", params={"encoder": encoder}).json()
    _, cols = points(client, encoder)
    point = cols["id"][int(np.flatnonzero(cols["kind"] == 0)[1])]
    spec = {"type": "point-set", "point": point, "target": "cat prompts"}
    intent = client.post("/api/intents", json=spec).json()
    started = client.post(
        "/api/alignment/runs",
        json={
            "encoder": encoder,
            "intent_ids": [intent["id"]],
            "scope": "adapter",
            # steps: hours, only a cancel ends it within the test; hold_anchors: the
            # default, as a JSON boolean (once read as 1, which the tuner refused)
            "params": {"steps": 1_000_000, "hold_anchors": True},
        },
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    def wait_for(condition) -> dict:
        deadline = time.monotonic() + 60
        while not condition(job := client.get(f"/api/jobs/{job_id}").json()):
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        return job

    wait_for(lambda job: job["message"].startswith("tuning step"))
    second = client.post(
        "/api/alignment/runs", json={"encoder": encoder, "intent_ids": [intent["id"]]}
    )
    assert second.status_code == 409 and job_id in message(second)  # one run at a time
    asked = client.post(f"/api/jobs/{job_id}/cancel")
    assert asked.status_code == 200, asked.text
    assert asked.json()["message"].startswith("cancelling")
    assert wait_for(lambda job: job["status"] != "running")["status"] == "cancelled"
    assert follow(client, job_id)["status"] == "cancelled"  # the event stream ends too
    assert client.get("/api/alignment/runs", params={"encoder": encoder}).json() == history
    again = client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "cancelled" in message(again)
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    client.delete(f"/api/intents/{intent['id']}")
