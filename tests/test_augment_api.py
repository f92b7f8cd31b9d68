"""Augmentation over HTTP: uploads and texts are validated, embedded and placed in the map.

A real ``modalchorus serve`` process serves a private copy of the small test workspace
(these tests add items to it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from browser.support import (
    CIFAR,
    COCO,
    COCO_IMAGES,
    IMAGES_PER_CLASS,
    served_client,
    workspace_copy,
)
from PIL import Image

from modalchorus.server.frames import decode_frame

N_CIFAR = 10 * IMAGES_PER_CLASS + 50
N_COCO = COCO_IMAGES * 6


PHOTOS = "photos"  # a dataset of images only, as `modalchorus embed FOLDER` makes


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    from modalchorus.data import load_image_folder
    from modalchorus.embedding import embed_dataset
    from modalchorus.encoders import create_encoder
    from modalchorus.store import Workspace

    path = workspace_copy(tmp_path_factory, "augment")
    folder = tmp_path_factory.mktemp(PHOTOS)
    for seed in range(4):
        (folder / f"{seed}.png").write_bytes(picture(seed))
    with Workspace.open(path) as opened:
        embed_dataset(opened, load_image_folder(folder, PHOTOS), create_encoder("pocket"))
    return path


@pytest.fixture(scope="module")
def client(workspace: Path):
    with served_client(workspace, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def encoder(client: httpx.Client) -> str:
    return client.get("/api/settings").json()["encoders"][0]


def picture(seed: int, size: tuple[int, int] = (40, 32), fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def frame(client: httpx.Client, dataset: str, encoder: str) -> dict:
    params = {"dataset": dataset, "encoder": encoder, "method": "mfm"}
    response = client.get("/api/projection/points", params=params)
    assert response.status_code == 200, response.text
    return decode_frame(response.content)[1]


def upload(client, encoder, files, set_name: str | None = None) -> httpx.Response:
    data = {"dataset": CIFAR, "encoder": encoder}
    if set_name is not None:
        data["set_name"] = set_name
    parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
    return client.post("/api/items/upload", data=data, files=parts)


def stored_state(client: httpx.Client, workspace: Path) -> tuple:
    """What a refused request must leave unchanged: uploaded files and the added items
    (every view lists them)."""
    folder = workspace / "uploads"
    files = sorted(os.listdir(folder)) if folder.is_dir() else []
    encoder = client.get("/api/settings").json()["encoders"][0]
    return files, [i for i in frame(client, CIFAR, encoder)["id"] if i.startswith("uploads/")]


def message(response: httpx.Response) -> str:
    return json.dumps(response.json()["detail"])


def test_a_dataset_without_texts_gets_the_reason_and_no_job(client, encoder) -> None:
    """First in the module: texts added later show in every dataset's view, PHOTOS's too."""
    jobs = client.get("/api/jobs").json()
    request = {"dataset": PHOTOS, "encoder": encoder, "method": "mfm"}
    answer = client.post("/api/projection", json=request)
    assert answer.status_code == 409, answer.text
    assert "has 4 images and 0 texts" in answer.json()["detail"]
    assert "at least 3 of each" in answer.json()["detail"]
    assert client.get("/api/jobs").json() == jobs


def test_uploaded_images_are_stored_embedded_and_placed_without_a_refit(
    client, encoder, workspace
) -> None:
    before = client.get("/api/projection", params={"dataset": CIFAR, "encoder": encoder}).json()
    png, jpeg = picture(1), picture(2, fmt="JPEG")
    response = upload(client, encoder, [("red.png", png), ("noise.jpg", jpeg)], "my uploads")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["dataset"] == "uploads" and result["n_new"] == 2
    assert result["projection"] == f"mfm:{CIFAR}:{encoder}"
    items = result["items"]
    assert [i["name"] for i in items] == ["red.png", "noise.jpg"]
    assert all(i["kind"] == "image" and i["new"] for i in items)
    sha = hashlib.sha256(png).hexdigest()
    assert items[0]["id"] == f"uploads/{sha}.png"
    assert (workspace / "uploads" / f"{sha}.png").read_bytes() == png
    assert result["set"]["name"] == "my uploads" and result["set"]["n_items"] == 2

    cols = frame(client, CIFAR, encoder)
    assert len(cols["id"]) == N_CIFAR + 2
    for item in items:
        row = cols["id"].index(item["id"])
        assert cols["kind"][row] == 0 and cols["predicted"][row] >= 0
        assert np.isfinite([item["x"], item["y"]]).all()
        assert cols["x"][row] == pytest.approx(item["x"]) and cols["y"][row] == pytest.approx(
            item["y"]
        )
    after = client.get("/api/projection", params={"dataset": CIFAR, "encoder": encoder}).json()
    assert after["n_items"] == N_CIFAR + 2  # stored, extended layout
    assert after["created_at"] == before["created_at"]
    assert after["params"] == before["params"]  # same fitted network: no re-fit
    original = [cols["id"].index(i) for i in cols["id"] if not i.startswith("uploads/")]
    assert len(original) == N_CIFAR

    # Detail and neighbours in the shown dataset's context; the thumbnail is stored.
    path = f"/api/items/{quote(items[0]['id'], safe='')}"
    detail = client.get(path, params={"encoder": encoder, "dataset": CIFAR}).json()
    assert detail["dataset"] == "uploads" and detail["predicted"]
    near = client.get(f"{path}/neighbours", params={"encoder": encoder, "dataset": CIFAR})
    assert len(near.json()["neighbours"]) == 10
    assert client.get(f"{path}/thumbnail").headers["content-type"] == "image/jpeg"

    # The same content again adds nothing; other datasets' maps place the uploads too.
    again = upload(client, encoder, [("copy.png", png)], "my uploads").json()
    assert again["n_new"] == 0 and again["items"][0]["id"] == items[0]["id"]
    assert again["set"]["n_items"] == 2
    coco = frame(client, COCO, encoder)
    assert len(coco["id"]) == N_COCO + 2 and items[1]["id"] in coco["id"]
    assert "uploads" not in [d["name"] for d in client.get("/api/settings").json()["datasets"]]
    for hidden in (
        client.post("/api/projection", json={"dataset": "uploads", "encoder": encoder}),
        client.get("/api/datasets/uploads"),
    ):
        assert hidden.status_code == 404 and "every dataset" in message(hidden)


def test_added_texts_are_placed_as_concept_texts(client, encoder) -> None:
    body = {
        "dataset": CIFAR,
        "encoder": encoder,
        "texts": ["  a photo of a red bicycle ", "a drawing of a whale"],
        "set_name": "typed",
    }
    response = client.post("/api/items/texts", json=body)
    assert response.status_code == 201, response.text
    result = response.json()
    names = [i["name"] for i in result["items"]]
    assert names == ["a photo of a red bicycle", "a drawing of a whale"]
    assert all(i["kind"] == "text" and i["x"] is not None for i in result["items"])
    cols = frame(client, CIFAR, encoder)
    rows = [cols["id"].index(i["id"]) for i in result["items"]]
    assert (cols["kind"][rows] == 2).all() and (cols["label"][rows] == -1).all()
    path = f"/api/items/{quote(result['items'][0]['id'], safe='')}"
    detail = client.get(path, params={"dataset": CIFAR}).json()
    assert detail["text"] == "a photo of a red bicycle" and detail["is_concept"]
    summary = client.get(f"/api/datasets/{CIFAR}").json()
    assert summary["n_concepts"] == N_CIFAR - 10 * IMAGES_PER_CLASS  # its prompts only
    blank = client.post("/api/items/texts", json={**body, "texts": ["ok", "   "]})
    assert blank.status_code == 422 and "texts" in message(blank)


@pytest.mark.parametrize("text", ["\u200b", " \ufeff ", "\u2060\u200b\u2060", "\u3164"])
def test_an_invisible_text_is_refused_and_nothing_is_written(
    client, encoder, workspace, text
) -> None:
    """Zero-width and other invisible characters only: as blank as spaces, so refused."""
    before = stored_state(client, workspace)
    body = {"dataset": CIFAR, "encoder": encoder, "texts": ["a visible text", text]}
    response = client.post("/api/items/texts", json=body)
    assert response.status_code == 422, response.text
    entries = response.json()["detail"]
    assert entries[0]["loc"] == ["body", "texts", 1], entries
    assert "no visible character" in entries[0]["msg"]
    assert stored_state(client, workspace) == before


def _refused(client, encoder, workspace, files) -> httpx.Response:
    before = stored_state(client, workspace)
    response = upload(client, encoder, files, "never")
    assert stored_state(client, workspace) == before  # nothing written
    assert not [s for s in client.get("/api/sets").json() if s["name"] == "never"]
    return response


def test_a_non_image_is_refused_by_name_and_nothing_is_written(client, encoder, workspace) -> None:
    files = [("fine.png", picture(10)), ("notes.txt", b"this is not an image\n")]
    response = _refused(client, encoder, workspace, files)
    assert response.status_code == 422
    assert "notes.txt: not an image" in message(response)
    assert not (workspace / "uploads" / f"{hashlib.sha256(files[0][1]).hexdigest()}.png").exists()


def test_a_truncated_png_is_refused(client, encoder, workspace) -> None:
    data = picture(11, size=(64, 64))
    response = _refused(client, encoder, workspace, [("cut.png", data[: len(data) // 2])])
    assert response.status_code == 422
    assert "cut.png: corrupt or truncated" in message(response)


@pytest.mark.parametrize(
    "size",
    [
        (8000, 5001),  # 40 008 000 pixels: just over the limit
        (20000, 20000),  # over Pillow's own bomb limit: it refuses to open the file
    ],
)
def test_too_many_pixels_are_refused(client, encoder, workspace, size) -> None:
    out = io.BytesIO()
    Image.new("1", size).save(out, format="PNG")  # a small file
    response = _refused(client, encoder, workspace, [("huge.png", out.getvalue())])
    assert response.status_code == 422
    assert "huge.png" in message(response) and "over the limit of 40,000,000" in message(response)
    assert "DOS" not in message(response)  # not Pillow's wording


def test_a_file_over_the_size_limit_is_refused(client, encoder, workspace) -> None:
    big = picture(12) + os.urandom(10 * 1024 * 1024)
    response = _refused(client, encoder, workspace, [("big.png", big)])
    assert response.status_code == 413
    assert "big.png" in message(response) and "limit" in message(response)


@pytest.mark.parametrize(
    ("length", "needle"),
    [
        (1_000, "the file name is 1,004 characters long, at most 255"),
        # too long for the multipart parser's header limit (Starlette said 400 "Invalid
        # multipart data.")
        (5_000, "file names may be at most 255 characters"),
    ],
)
def test_an_overlong_file_name_is_refused_and_nothing_is_written(
    client, encoder, workspace, length, needle
) -> None:
    response = _refused(client, encoder, workspace, [("n" * length + ".png", picture(14))])
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "files"]
    assert needle in message(response)
    assert len(message(response)) < 1_000  # the name is shortened, not echoed in full
    assert not (workspace / "uploads" / f"{hashlib.sha256(picture(14)).hexdigest()}.png").exists()


@pytest.mark.parametrize(
    ("data", "status", "needle"),
    [
        ({"dataset": "nope"}, 404, "nope"),
        ({"encoder": "nope"}, 404, "nope"),
        ({"dataset": "uploads"}, 422, "uploads"),
        ({"set_name": "x" * 101}, 422, "set_name"),
        ({"set_name": "   "}, 422, "blank"),
    ],
)
def test_bad_views_and_set_names(client, encoder, workspace, data, status, needle) -> None:
    before = stored_state(client, workspace)
    form = {"dataset": CIFAR, "encoder": encoder, **data}
    files = [("files", ("ok.png", picture(13), "image/png"))]
    response = client.post("/api/items/upload", data=form, files=files)
    assert response.status_code == status, response.text
    assert needle in message(response)
    assert stored_state(client, workspace) == before


def test_uploads_can_be_removed_and_dataset_items_cannot(client, encoder, workspace) -> None:
    png = picture(30)
    added = upload(client, encoder, [("gone.png", png)], "to remove").json()
    item = added["items"][0]["id"]
    kept = upload(client, encoder, [("kept.png", picture(31))], "to remove").json()
    path = f"/api/items/{quote(item, safe='')}"
    stored = workspace / "uploads" / item.removeprefix("uploads/")
    assert stored.is_file()
    n_before = len(frame(client, CIFAR, encoder)["id"])

    intent = client.post(
        "/api/intents", json={"type": "point-set", "point": item, "target": "to remove"}
    ).json()
    in_use = client.delete(path)
    assert in_use.status_code == 409 and f"#{intent['id']}" in message(in_use)
    assert stored.is_file() and len(frame(client, CIFAR, encoder)["id"]) == n_before
    client.delete(f"/api/intents/{intent['id']}")

    response = client.delete(path)
    assert response.status_code == 200, response.text
    assert response.json()["removed"] == [item]
    assert not stored.exists()
    cols = frame(client, CIFAR, encoder)
    assert len(cols["id"]) == n_before - 1 and item not in cols["id"]
    params = {"dataset": CIFAR, "encoder": encoder}
    assert client.get("/api/projection", params=params).json()["n_items"] == n_before - 1
    assert kept["items"][0]["id"] in cols["id"]
    tagged = [s for s in client.get("/api/sets").json() if s["name"] == "to remove"][0]
    assert tagged["item_ids"] == [kept["items"][0]["id"]]
    assert client.get(path).status_code == 404
    assert client.delete(path).status_code == 404
    unknown = client.delete("/api/items/nope")
    assert unknown.status_code == 404 and "nope" in message(unknown)
    unknown = client.delete("/api/items/uploads/nope")  # named, not "1 of 1 item ids"
    assert unknown.status_code == 404 and "unknown item id 'uploads/nope'" in message(unknown)
    detail = client.get(f"/api/items/{quote(kept['items'][0]['id'], safe='')}")
    assert detail.status_code == 422 and "pass dataset" in message(detail)

    # The stored map still lists the removed item; an alignment run places the rest.
    intent = client.post(
        "/api/intents", json={"type": "point-set", "point": cols["id"][0], "target": "to remove"}
    ).json()
    run = client.post(
        "/api/alignment/runs", json={"encoder": encoder, "intent_ids": [intent["id"]]}
    ).json()
    job, deadline = run, time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/api/jobs/{run['id']}").json()
    assert job["status"] == "done", job
    client.post("/api/alignment/undo", json={"encoder": encoder})
    client.delete(f"/api/intents/{intent['id']}")

    dataset_item = cols["id"][0]
    refused = client.delete(f"/api/items/{quote(dataset_item, safe='')}")
    assert refused.status_code == 409 and "only items added through Augment" in message(refused)
    # Uploading the same picture again brings it back.
    back = upload(client, encoder, [("gone.png", png)]).json()
    assert back["items"][0]["id"] == item and back["n_new"] == 1 and stored.is_file()


def test_an_extreme_aspect_ratio_is_embedded_without_exhausting_memory(client, encoder) -> None:
    strip = io.BytesIO()
    Image.new("L", (200_000, 1), color=90).save(strip, format="PNG")  # a few hundred bytes
    response = upload(client, encoder, [("strip.png", strip.getvalue())])
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["id"] in frame(client, CIFAR, encoder)["id"]
    assert client.get("/api/health").status_code == 200


def test_a_failed_encoding_takes_back_the_items_and_files_it_added(tmp_path) -> None:
    from modalchorus.encoders import create_encoder
    from modalchorus.server.augment import add_items, check_images
    from modalchorus.store import Workspace

    pocket = create_encoder("pocket")

    class Failing:
        """The real encoder, failing on images (as a MemoryError in decoding would)."""

        id, dim = pocket.id, pocket.dim

        def encode_images(self, images, batch_size=64):
            raise MemoryError("no room")

        def encode_texts(self, texts):
            return pocket.encode_texts(texts)

    ws = Workspace.create(tmp_path / "ws")
    add_items(ws, pocket, texts=["kept from before"])
    before = ws.items()["id"].tolist()
    images = check_images([("a.png", picture(40)), ("b.png", picture(41))])
    with pytest.raises(MemoryError, match="no room"):
        add_items(ws, Failing(), images=images, texts=["a text added with them"])
    assert ws.items()["id"].tolist() == before
    assert not list((tmp_path / "ws" / "uploads").glob("*.png"))
    # Nothing is left for the next request to retry: a text alone goes through.
    added = add_items(ws, pocket, texts=["a later text"])
    assert added.new == [True] and len(ws.get_embeddings(pocket.id)[0]) == 2
    fresh = Workspace.create(tmp_path / "fresh")  # the first request into a workspace
    with pytest.raises(MemoryError):
        add_items(fresh, Failing(), images=images)
    assert fresh.items().empty
