"""The HTTP API under concurrent use and against stored state: which error comes first,
repeated intents, and what a running background job refuses.

The app runs in-process (FastAPI's TestClient) over a private copy of the small test
workspace, so a test can hold a job "running" exactly as long as it needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser.support import CIFAR, workspace_copy
from fastapi.testclient import TestClient

from modalchorus.server import create_app
from modalchorus.server.state import ServerState
from modalchorus.store import Workspace

CAT_PROMPTS = [f"{CIFAR}/text/prompt/{i:04d}" for i in range(15, 20)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return workspace_copy(tmp_path_factory, "server-state")


@pytest.fixture(scope="module")
def client(workspace: Path) -> Iterator[TestClient]:
    with TestClient(create_app(workspace, static_dir=None)) as client:
        yield client


@pytest.fixture(scope="module")
def encoder(client: TestClient) -> str:
    return client.get("/api/settings").json()["encoders"][0]


@pytest.fixture(scope="module")
def image_ids(workspace: Path) -> list[str]:
    with Workspace.open(workspace) as ws:
        return ws.items(kind="image", dataset=CIFAR)["id"].tolist()[:12]


def run_key(encoder: str) -> str:
    """The job key of an alignment run (``modalchorus.server.alignment.run_key``)."""
    return f"alignment:{encoder}"


def state(client: TestClient) -> ServerState:
    return client.app.state.modalchorus  # type: ignore[attr-defined]


def detail(response) -> str:
    return json.dumps(response.json()["detail"])


class HeldJob:
    """A background job that runs until released (stands in for a long fit or run)."""

    def __init__(self, client: TestClient, kind: str, key: str) -> None:
        self._release = threading.Event()
        self._started = threading.Event()

        def work(progress) -> str:
            self._started.set()
            self._release.wait(60)
            return "held"

        self.job = state(client).jobs.submit(kind, key, work)
        assert self._started.wait(30), "the held job did not start"

    def release(self) -> None:
        self._release.set()
        for _ in range(300):
            if self.job.finished:
                return
            threading.Event().wait(0.05)
        raise AssertionError("the held job did not finish")


# ---------------------------------------------------------------- order of errors


def test_new_set_with_a_taken_name_and_unknown_items_names_the_items(client, image_ids):
    """Unknown item ids (404) are reported before a taken name (409)."""
    first = client.post("/api/sets", json={"name": "taken", "item_ids": image_ids[:2]})
    assert first.status_code == 201, first.text
    both = client.post("/api/sets", json={"name": "taken", "item_ids": [f"{CIFAR}/nope"]})
    assert both.status_code == 404, both.text
    assert f"{CIFAR}/nope" in detail(both)
    clash = client.post("/api/sets", json={"name": " taken ", "item_ids": image_ids[:1]})
    assert clash.status_code == 409 and "already exists" in detail(clash)
    assert [s["name"] for s in client.get("/api/sets").json()].count("taken") == 1


def test_run_request_names_bad_params_before_unknown_intents(client, encoder):
    body = {"encoder": encoder, "intent_ids": [987654], "params": {"steps": -1}}
    response = client.post("/api/alignment/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "params"]


# ---------------------------------------------------------------- repeated intents


def test_the_same_intent_twice_is_refused_naming_the_stored_one(client, workspace, image_ids):
    made = client.post("/api/sets", json={"name": "cat prompts", "item_ids": CAT_PROMPTS})
    assert made.status_code == 201, made.text
    spec = {"type": "set-set", "a": "cat prompts", "b": image_ids[:4]}
    first = client.post("/api/intents", json=spec)
    assert first.status_code == 201, first.text
    stored = first.json()["id"]
    before = client.get("/api/intents").json()
    # the same intent, as given and with its defaults spelled out (an integer strength too)
    for again in (spec, {**spec, "mode": "align", "strength": 1}):
        response = client.post("/api/intents", json=again)
        assert response.status_code == 409, response.text
        assert f"#{stored}" in detail(response)
    assert client.get("/api/intents").json() == before
    with Workspace.open(workspace) as reopened:  # nothing half-written
        assert [i.id for i in reopened.intents()] == [i["id"] for i in before]
    # a different strength or mode is another intent
    other = client.post("/api/intents", json={**spec, "strength": 2})
    assert other.status_code == 201, other.text
    apart = client.post("/api/intents", json={**spec, "mode": "separate"})
    assert apart.status_code == 201, apart.text
    for intent_id in (stored, other.json()["id"], apart.json()["id"]):
        assert client.delete(f"/api/intents/{intent_id}").status_code == 204
    # deleted, it may be stated again
    again = client.post("/api/intents", json=spec)
    assert again.status_code == 201, again.text
    assert client.delete(f"/api/intents/{again.json()['id']}").status_code == 204


def test_a_run_naming_an_intent_twice_is_refused(client, encoder, image_ids):
    spec = {"type": "set-set", "a": image_ids[:3], "b": image_ids[3:6]}
    made = client.post("/api/intents", json=spec)
    assert made.status_code == 201, made.text
    intent_id = made.json()["id"]
    body = {"encoder": encoder, "intent_ids": [intent_id, intent_id]}
    response = client.post("/api/alignment/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "intent_ids"]
    assert f"#{intent_id}" in detail(response)
    assert all(j["kind"] != "alignment" for j in client.get("/api/jobs").json())
    assert client.delete(f"/api/intents/{intent_id}").status_code == 204


# ---------------------------------------------------------------- while a job runs


def test_undo_and_redo_wait_for_a_running_alignment_run(client, encoder):
    """Stepping while a run tunes would make the run fail at its end (its work lost)."""
    held = HeldJob(client, "alignment", run_key(encoder))
    try:
        for direction in ("undo", "redo"):
            response = client.post(f"/api/alignment/{direction}", json={"encoder": encoder})
            assert response.status_code == 409, response.text
            assert held.job.id in detail(response)
    finally:
        held.release()
    response = client.post("/api/alignment/undo", json={"encoder": encoder})
    assert response.status_code == 200, response.text


def test_undo_goes_ahead_once_the_run_is_being_cancelled(client, encoder):
    held = HeldJob(client, "alignment", run_key(encoder))
    try:
        assert client.post(f"/api/jobs/{held.job.id}/cancel").status_code == 200
        response = client.post("/api/alignment/undo", json={"encoder": encoder})
        assert response.status_code == 200, response.text
    finally:
        held.release()


def test_removing_an_upload_waits_for_a_running_job(client, encoder):
    """A fit or run over every item, this one included, would fail at its end."""
    body = {"dataset": CIFAR, "encoder": encoder, "texts": ["a violet giraffe"]}
    added = client.post("/api/items/texts", json=body)
    assert added.status_code == 201, added.text
    item_id = added.json()["items"][0]["id"]
    held = HeldJob(client, "fit_projection", "mfm:held")
    try:
        response = client.delete(f"/api/items/{item_id}")
        assert response.status_code == 409, response.text
        assert held.job.id in detail(response)
        # an unknown id is still a 404 (unknown before conflicting)
        assert client.delete("/api/items/uploads/text/0000").status_code == 404
    finally:
        held.release()
    assert item_id in _uploads(client)
    response = client.delete(f"/api/items/{item_id}")
    assert response.status_code == 200, response.text
    assert response.json()["removed"] == [item_id]


# ---------------------------------------------------------------- tagging added items


@pytest.mark.parametrize("name", ["a\x01b", "\u200b", "tab\there"])
def test_added_texts_with_a_bad_set_name_are_refused_before_anything_is_written(
    client, encoder, name
):
    uploads_before = _uploads(client)
    body = {"dataset": CIFAR, "encoder": encoder, "texts": ["an orange lobster"], "set_name": name}
    response = client.post("/api/items/texts", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "set_name"]
    assert _uploads(client) == uploads_before
    assert name.strip() not in [s["name"] for s in client.get("/api/sets").json()]


def test_uploaded_images_with_a_bad_set_name_are_refused(client, encoder):
    response = client.post(
        "/api/items/upload",
        files={"files": ("x.png", b"not even an image", "image/png")},
        data={"dataset": CIFAR, "encoder": encoder, "set_name": "x\x02y"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "set_name"]


def test_texts_tagged_into_one_set_by_two_requests_at_once_all_join_it(client, encoder):
    texts = [f"a tagged word {i}" for i in range(6)]
    answers: list = []

    def add(text: str) -> None:
        body = {"dataset": CIFAR, "encoder": encoder, "texts": [text], "set_name": "tagged"}
        answers.append(client.post("/api/items/texts", json=body))

    threads = [threading.Thread(target=add, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201] * len(texts), [a.text for a in answers]
    ids = {a.json()["items"][0]["id"] for a in answers}
    tagged = [s for s in client.get("/api/sets").json() if s["name"] == "tagged"]
    assert len(tagged) == 1 and set(tagged[0]["item_ids"]) == ids


def _uploads(client: TestClient) -> list[str]:
    return sorted(state(client).workspace.items(dataset="uploads")["id"].tolist())
