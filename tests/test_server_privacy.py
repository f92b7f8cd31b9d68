"""The server's answers never show the server machine's folders.

``modalchorus serve --host 0.0.0.0`` sends every answer to remote users: the workspace's
location, the datasets' folders, home and temporary folders must not appear in error
bodies, job messages and errors, or the settings. A real server process serves a small
workspace whose photos lie in a folder of this test (with a space in its name), so the
tests can remove and damage them as a user's disk would.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from browser.support import LiveServer
from PIL import Image

PHOTOS = "photos"
N_PHOTOS = 6
#: Seconds the served workspace waits for the write lock (``modalchorus serve``: 600).
LOCK_TIMEOUT_S = 1.0
#: ``modalchorus serve``, with a short wait for the write lock.
SERVE = f"""
import sys
import uvicorn
from modalchorus.server.app import create_app
app = create_app(sys.argv[1], static_dir=None)
app.state.modalchorus.workspace.lock_timeout = {LOCK_TIMEOUT_S}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Six COCO-mini photos with two captions each, listed in a JSONL manifest."""
    folder = tmp_path_factory.mktemp("private") / "My Photos"
    (folder / "images").mkdir(parents=True)
    coco = data_dir / "coco_mini_captions"
    lines = []
    for record in json.loads((coco / "captions.json").read_text())[:N_PHOTOS]:
        shutil.copy(coco / record["image"], folder / record["image"])
        for caption in record["captions"][:2]:
            lines.append(json.dumps({"image": record["image"], "caption": caption}))
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path, pocket) -> Path:
    from modalchorus.data import load_manifest
    from modalchorus.embedding import embed_dataset
    from modalchorus.store import Workspace

    path = tmp_path_factory.mktemp("server") / "ws"
    dataset = load_manifest(photo_dir / "captions.jsonl", caption_column="caption", name=PHOTOS)
    with Workspace.create(path) as created:
        embed_dataset(created, dataset, pocket)
    return path


@pytest.fixture(scope="module")
def client(workspace: Path) -> Iterator[httpx.Client]:
    server = LiveServer(workspace, script=SERVE)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def encoder(client: httpx.Client) -> str:
    return client.get("/api/settings").json()["encoders"][0]


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory, photo_dir: Path, workspace: Path):
    """Asserts that a text shows none of the server's folders (nor their names)."""
    folders = [photo_dir, workspace, tmp_path_factory.getbasetemp(), Path.home()]

    def check(text: str) -> None:
        for folder in folders:
            for form in (str(folder), str(folder.resolve())):
                assert form not in text and form.lstrip("/") not in text, (form, text)
        assert "My Photos" not in text, text
        assert "private" not in text, text

    return check


@pytest.fixture(scope="module")
def items(workspace: Path) -> dict[str, list[str]]:
    """The photos' item ids by kind (``image``, ``text``) and their image files."""
    from modalchorus.store import Workspace

    with Workspace.open(workspace) as opened:
        table = opened.items(dataset=PHOTOS)
    return {
        "image": table.loc[table["kind"] == "image", "id"].tolist(),
        "text": table.loc[table["kind"] == "text", "id"].tolist(),
        "source": table.loc[table["kind"] == "image", "source"].tolist(),
    }


def run_and_follow(client: httpx.Client, body: dict) -> tuple[dict, str]:
    """Start an alignment run; its final state and the text of its event stream."""
    answer = client.post("/api/alignment/runs", json=body)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        events = "".join(stream.iter_text())
    final = client.get(f"/api/jobs/{job['id']}").json()
    assert final["status"] == "failed", final
    return final, events


def picture(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@contextmanager
def damaged(path: Path, content: bytes | None) -> Iterator[None]:
    """``path`` removed (``content`` None) or rewritten with ``content``, then restored."""
    original = path.read_bytes()
    try:
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
        yield
    finally:
        path.write_bytes(original)


# ---------------------------------------------------------------- what the server says


def test_settings_name_the_workspace_without_its_folder(client, workspace, private) -> None:
    """The browser keeps settings per workspace under this key: stable, but no path."""
    answer = client.get("/api/settings")
    private(answer.text)
    key = answer.json()["workspace"]
    assert key.startswith(f"{workspace.name}-") and "/" not in key and "\\" not in key
    assert client.get("/api/settings").json()["workspace"] == key


@pytest.mark.parametrize(
    ("scope", "truncate", "reason"),
    [("lora", False, ""), ("last-blocks", True, "truncated")],
    ids=["missing", "truncated"],
)
def test_a_tower_run_over_a_bad_photo_names_the_item_not_its_folder(
    client, encoder, items, private, scope, truncate, reason
) -> None:
    """Tower scopes re-read every image: a missing or corrupt file fails the job, and its
    error (status, listing and event stream alike) names the item, not the file's path."""
    victim, source = items["image"][1], Path(items["source"][1])
    content = source.read_bytes()[:3000] if truncate else None
    body = {
        "encoder": encoder,
        "scope": scope,
        "intents": [{"type": "point-set", "point": items["image"][0], "target": items["text"][:3]}],
    }
    with damaged(source, content):
        job, events = run_and_follow(client, body)
    assert victim in job["error"] and reason in job["error"], job["error"]
    for text in (json.dumps(job), events, client.get("/api/jobs").text):
        private(text)


def test_a_tower_run_over_a_lost_upload_names_the_upload(
    client, encoder, items, workspace, private
) -> None:
    """An uploaded image lives in the workspace folder; its error names the upload's id."""
    data = picture(1)
    answer = client.post(
        "/api/items/upload",
        data={"dataset": PHOTOS, "encoder": encoder},
        files=[("files", ("red.png", data, "image/png"))],
    )
    assert answer.status_code == 201, answer.text
    upload = answer.json()["items"][0]["id"]
    assert upload == f"uploads/{hashlib.sha256(data).hexdigest()}.png"
    body = {
        "encoder": encoder,
        "scope": "lora",
        "intents": [{"type": "point-set", "point": items["image"][0], "target": items["text"][:3]}],
    }
    try:
        with damaged(workspace / upload, None):
            job, events = run_and_follow(client, body)
    finally:
        assert client.delete(f"/api/items/{quote(upload, safe='')}").status_code == 200
    assert upload in job["error"], job["error"]
    private(json.dumps(job))
    private(events)


def test_a_held_write_lock_answers_without_the_catalog_path(
    client, encoder, items, workspace, private
) -> None:
    """Another writer (a CLI command) holding the lock: a 503 that says so, and a job that
    fails on it, both without the catalog file's path."""
    lock = sqlite3.connect(workspace / "workspace.sqlite", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        answer = client.post("/api/sets", json={"name": "locked", "item_ids": items["image"][:1]})
        assert answer.status_code == 503, answer.text
        assert "busy" in answer.json()["detail"]
        private(answer.text)
        request = {"dataset": PHOTOS, "encoder": encoder, "method": "pca", "refit": True}
        answer = client.post("/api/projection", json=request)
        assert answer.status_code == 200 and answer.json()["status"] == "fitting", answer.text
        job = answer.json()["job"]
        with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            events = "".join(stream.iter_text())
        job = client.get(f"/api/jobs/{job['id']}").json()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert job["status"] == "failed" and "locked" in job["error"], job
    private(json.dumps(job))
    private(events)


# ---------------------------------------------------------------- the redaction itself


def test_redaction_turns_paths_into_item_ids_and_file_names() -> None:
    from modalchorus.server.redact import redact_paths

    sources = {
        "/data/My Photos/golden retriever/x.jpg": "pets/golden retriever/x.jpg",
        "/data/cifar/test_batch#5": "cifar10/test/00005",
        "/data/cifar/test_batch#50": "cifar10/test/00050",
    }
    folders = ["/data/My Photos", "/srv/my ws"]
    cases = {
        # item files become their ids, with spaces, quoted, at a sentence's end
        "cannot decode image /data/My Photos/golden retriever/x.jpg: bad": (
            "cannot decode image pets/golden retriever/x.jpg: bad"
        ),
        "rows '/data/cifar/test_batch#50' and /data/cifar/test_batch#5.": (
            "rows 'cifar10/test/00050' and cifar10/test/00005."
        ),
        # other paths become their last part, below a known folder with its spaces
        "catalog /srv/my ws/workspace.sqlite is locked": "catalog workspace.sqlite is locked",
        "Not found: srv/my ws/lance/a.lance, /root/.cargo/src/local.rs:273:40": (
            "Not found: a.lance, local.rs:273:40"
        ),
        "[Errno 2] No such file: '/home/alice/x.png'": "[Errno 2] No such file: 'x.png'",
        r"C:\Users\alice\ws\catalog.sqlite is locked": "catalog.sqlite is locked",
        "see file:///home/alice/notes.txt.": "see notes.txt.",
        # not paths: ids, fractions, URLs, encoder ids, a lone slash
        "photos/images/1.jpg: 256/2000 (http://host/a/b), hf:/models/clip, a / b": (
            "photos/images/1.jpg: 256/2000 (http://host/a/b), hf:/models/clip, a / b"
        ),
    }
    for text, expected in cases.items():
        assert redact_paths(text, folders, sources) == expected


def test_a_failed_jobs_error_shows_no_path() -> None:
    """Any job's exception text is redacted before a client can read it."""
    from modalchorus.server.jobs import JobManager

    manager = JobManager()
    reported, go_on = threading.Event(), threading.Event()

    def fail(progress) -> str:
        progress(0.5, "reading /srv/secret/data/batch.bin")
        reported.set()
        go_on.wait(30)
        Path("/srv/secret/data/missing.jpg").read_bytes()
        return "never"

    job = manager.submit("test", "fail", fail)
    assert reported.wait(30)
    assert job.info().message == "reading batch.bin"
    go_on.set()
    deadline = time.monotonic() + 30
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.shutdown()
    info = job.info()
    assert info.status == "failed" and "missing.jpg" in info.error, info
    assert "/srv" not in info.error and "secret" not in info.error


def test_an_unexpected_failure_is_a_json_500_that_shows_nothing_of_it() -> None:
    """A bug's message may hold anything (here a path): the answer is JSON and keeps it."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from modalchorus.server.errors import INTERNAL_MESSAGE, install_handlers

    app = FastAPI()
    install_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("/home/alice/secret/file.txt is broken")

    # The app runs in the test client's own thread and loop (the browser tests leave an
    # event loop running in this one).
    with TestClient(app, raise_server_exceptions=False) as asker:
        answer = asker.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {"detail": INTERNAL_MESSAGE}


def test_an_undo_whose_upload_cannot_be_embedded_still_answers(
    client, encoder, items, workspace, private
) -> None:
    """Undo commits before uploads get vectors of the version it makes current: an upload
    added under the run's version whose file is gone cannot get one, and the answer says the
    undo happened instead of a 500."""
    body = {
        "encoder": encoder,
        "scope": "adapter",
        "intents": [{"type": "point-set", "point": items["image"][0], "target": items["text"][:3]}],
    }
    run = client.post("/api/alignment/runs", json=body).json()
    with client.stream("GET", f"/api/jobs/{run['id']}/events") as stream:
        "".join(stream.iter_text())
    assert client.get(f"/api/jobs/{run['id']}").json()["status"] == "done"
    answer = client.post(
        "/api/items/upload",
        data={"dataset": PHOTOS, "encoder": encoder},
        files=[("files", ("blue.png", picture(2), "image/png"))],
    )
    assert answer.status_code == 201, answer.text
    upload = answer.json()["items"][0]["id"]
    try:
        with damaged(workspace / upload, None):
            undone = client.post("/api/alignment/undo", json={"encoder": encoder})
            assert undone.status_code == 200, undone.text
            assert undone.json()["history"]["active_encoder_id"] == encoder
            private(undone.text)
    finally:
        assert client.delete(f"/api/items/{quote(upload, safe='')}").status_code == 200
