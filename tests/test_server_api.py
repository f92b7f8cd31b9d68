"""The HTTP API against a real workspace, served by a real ``modalchorus serve`` process."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from browser.support import CIFAR, COCO, COCO_IMAGES, IMAGES_PER_CLASS, LiveServer, live_server

from modalchorus.server.frames import MEDIA_TYPE, decode_frame, encode_frame

REPO = Path(__file__).resolve().parents[1]
N_CIFAR = 10 * IMAGES_PER_CLASS + 50  # images + class prompts
N_COCO = COCO_IMAGES * 6  # images + 5 captions each
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory) -> LiveServer:
    return live_server(tmp_path_factory, request.config.add_cleanup)


@pytest.fixture(scope="module")
def client(server: LiveServer):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def encoder(client: httpx.Client) -> str:
    return client.get("/api/settings").json()["encoders"][0]


def view(dataset: str, encoder: str, method: str = "mfm") -> dict[str, str]:
    return {"dataset": dataset, "encoder": encoder, "method": method}


def points(client: httpx.Client, dataset: str, encoder: str, method: str = "mfm"):
    response = client.get("/api/projection/points", params=view(dataset, encoder, method))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    return decode_frame(response.content)


def detail(response: httpx.Response) -> str:
    return json.dumps(response.json()["detail"])


# ---------------------------------------------------------------- contract and settings


def test_openapi_document_matches_the_front_ends_copy(client: httpx.Client) -> None:
    """web/openapi.json (what src/api-types.ts is generated from) is the served schema."""
    from modalchorus.server.openapi import dumps

    served = client.get("/api/openapi.json").json()
    copy = (REPO / "web" / "openapi.json").read_text()
    assert dumps(served) == copy, (
        "the API changed: run `python -m modalchorus.server.openapi web/openapi.json` "
        "and `npm run gen:api` in web/"
    )


def test_settings_list_datasets_encoders_and_methods(client: httpx.Client) -> None:
    settings = client.get("/api/settings").json()
    datasets = {d["name"]: d for d in settings["datasets"]}
    assert datasets[CIFAR]["n_images"] == 10 * IMAGES_PER_CLASS
    assert datasets[CIFAR]["n_concepts"] == 50
    assert datasets[CIFAR]["tasks"] == ["zero-shot classification"]
    assert datasets[COCO]["tasks"] == ["retrieval"]
    assert datasets[COCO]["n_texts"] == COCO_IMAGES * 5
    assert settings["encoders"][0].startswith("pocket@")
    assert settings["methods"][0] == settings["default_method"] == "mfm"
    assert {"tsne", "umap", "pca", "dcm", "mds"} <= set(settings["methods"])
    assert client.get(f"/api/datasets/{COCO}").json()["classes"] is None


# ---------------------------------------------------------------- projection


def test_stored_projection_is_ready_with_quality_metrics(client, encoder) -> None:
    answer = client.post("/api/projection", json=view(CIFAR, encoder)).json()
    assert answer["status"] == "ready" and answer["job"] is None
    meta = answer["projection"]
    assert meta["name"] == f"mfm:{CIFAR}:{encoder}"
    assert meta["n_items"] == N_CIFAR
    metrics = meta["metrics"]
    assert metrics["ks"] == [10] and metrics["skipped"] == []
    for key in ("inter_T@10", "inter_C@10", "inter_T_image_to_text@10", "agreement"):
        assert 0.0 <= metrics[key] <= 1.0
    assert client.get("/api/projection", params=view(CIFAR, encoder)).json() == meta


def test_points_frame_has_every_item_once_with_attributes(client, encoder) -> None:
    header, cols = points(client, CIFAR, encoder)
    n = header["n"]
    assert n == N_CIFAR and len(set(cols["id"])) == n
    assert cols["x"].dtype == np.float32 and np.isfinite(cols["x"]).all()
    kinds = np.bincount(cols["kind"], minlength=3)
    assert kinds.tolist() == [10 * IMAGES_PER_CLASS, 0, 50]  # images, captions, concepts
    meta = header["meta"]
    assert len(meta["label_names"]) == 10
    images = cols["kind"] == 0
    assert (cols["label"] >= 0).all()
    assert (cols["predicted"][images] >= 0).all() and (cols["predicted"][~images] == -1).all()
    _, coco = points(client, COCO, encoder)
    captions = coco["kind"] == 1
    assert captions.sum() == COCO_IMAGES * 5
    owners = coco["pair"][captions]
    assert (coco["kind"][owners] == 0).all()  # every caption points at its image


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("*", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, deflate", False),
        ("identity", False),
        ("*;q=0", False),
    ],
)
def test_responses_are_gzipped_only_where_the_client_accepts_it(
    client, encoder, accept, gzipped
) -> None:
    """Both the point frames and the middleware (a large JSON body) read the q-values."""
    frame = client.build_request(
        "GET",
        "/api/projection/points",
        params=view(CIFAR, encoder),
        headers={"accept-encoding": accept},
    )
    schema = client.build_request("GET", "/api/openapi.json", headers={"accept-encoding": accept})
    for request in (frame, schema):
        response = client.send(request)
        assert response.status_code == 200
        assert (response.headers.get("content-encoding") == "gzip") is gzipped, request.url
        assert len(response.content) > 1024  # decoded by httpx either way


def test_projection_downloads_as_csv_in_points_order(client, encoder) -> None:
    import io

    import pandas as pd

    response = client.get("/api/projection/csv", params=view(COCO, encoder))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="mfm-{COCO}.csv"'
    table = pd.read_csv(io.StringIO(response.text))
    _, cols = points(client, COCO, encoder)
    assert table["id"].tolist() == list(cols["id"])
    np.testing.assert_array_equal(table[["x", "y"]].to_numpy(np.float32)[:, 0], cols["x"])
    captions = table[table["kind"] == "text"]
    assert len(captions) == COCO_IMAGES * 5 and captions["text"].str.len().gt(0).all()
    assert captions["image_id"].isin(table["id"]).all()  # every caption names its image
    missing = client.get("/api/projection/csv", params=view(COCO, encoder, "mds"))
    assert missing.status_code == 404 and "no mds projection" in detail(missing)


def test_missing_projection_is_fitted_as_a_job_with_progress_events(client, encoder) -> None:
    request = {**view(COCO, encoder, "pca"), "refit": True}
    answer = client.post("/api/projection", json=request).json()
    assert answer["status"] == "fitting"
    job_id = answer["job"]["id"]
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers  # never buffered by compression
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert events[-1]["status"] == "done", events[-1]
    assert events[-1]["result"] == f"pca:{COCO}:{encoder}"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "done"
    again = client.post("/api/projection", json=view(COCO, encoder, "pca")).json()
    assert again["status"] == "ready"  # stored: instant from now on
    header, _ = points(client, COCO, encoder, "pca")
    assert header["n"] == N_COCO and header["meta"]["projection"] == f"pca:{COCO}:{encoder}"
    names = [p["name"] for p in client.get("/api/projections").json()]
    assert f"pca:{COCO}:{encoder}" in names


# ---------------------------------------------------------------- items


def test_image_detail_thumbnail_and_neighbours(client, encoder) -> None:
    _, cols = points(client, CIFAR, encoder)
    image_id = cols["id"][0]
    item = client.get(f"/api/items/{quote(image_id, safe='')}", params={"encoder": encoder}).json()
    assert item["kind"] == "image" and item["label"] and item["predicted"]
    thumb = client.get(item["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    answer = client.get(
        f"/api/items/{image_id}/neighbours", params={"encoder": encoder, "k": 5}
    ).json()
    sims = [n["similarity"] for n in answer["neighbours"]]
    assert len(sims) == 5 and sims == sorted(sims, reverse=True)
    assert all(n["kind"] == "text" for n in answer["neighbours"])


def test_caption_detail_names_its_image_and_finds_it(client, encoder) -> None:
    _, cols = points(client, COCO, encoder)
    row = int(np.flatnonzero(cols["kind"] == 1)[0])
    caption_id = cols["id"][row]
    path = f"/api/items/{quote(caption_id, safe='')}"  # ids hold "/" and "#"
    item = client.get(path).json()  # default encoder
    assert item["kind"] == "text" and not item["is_concept"] and item["text"]
    assert item["image_id"] == cols["id"][cols["pair"][row]]
    assert item["thumbnail_url"] is None
    answer = client.get(f"{path}/neighbours", params={"k": COCO_IMAGES}).json()
    assert [n["is_pair"] for n in answer["neighbours"]].count(True) == 1
    assert all(n["kind"] == "image" for n in answer["neighbours"])


# ---------------------------------------------------------------- concept axis


def test_concept_axis_places_items_by_relative_similarity(client, encoder) -> None:
    body = {
        "dataset": CIFAR,
        "encoder": encoder,
        "concept_a": "a photo of a cat",
        "concept_b": "a photo of a truck",
    }
    response = client.post("/api/concept-axis", json=body)
    assert response.status_code == 200, response.text
    header, axis = decode_frame(response.content)
    assert header["n"] == N_CIFAR and "y" not in axis
    assert np.abs(axis["x"]).max() <= 2.0
    _, cols = points(client, CIFAR, encoder)
    names = header_names = points(client, CIFAR, encoder)[0]["meta"]["label_names"]
    images = cols["kind"] == 0
    trucks = images & (cols["label"] == names.index("truck"))
    cats = images & (cols["label"] == names.index("cat"))
    assert axis["x"][trucks].mean() > axis["x"][cats].mean()
    assert header_names == names
    second = client.post(
        "/api/concept-axis", json={**body, "concept_c": "day", "concept_d": "night"}
    )
    assert decode_frame(second.content)[1]["y"].shape == (N_CIFAR,)


# ---------------------------------------------------------------- metrics


def test_task_metrics(client, encoder) -> None:
    cls = client.get("/api/metrics/task", params={"dataset": CIFAR, "encoder": encoder}).json()
    assert cls["task"] == "zero-shot classification" and 0 <= cls["accuracy"] <= 1
    confusion = np.array(cls["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10 * IMAGES_PER_CLASS
    ret = client.get("/api/metrics/task", params={"dataset": COCO, "encoder": encoder}).json()
    assert ret["task"] == "retrieval"
    assert set(ret["recall"]) == {f"{d}_R@{k}" for d in ("t2i", "i2t") for k in (1, 5, 10)}


# ---------------------------------------------------------------- sets


def test_sets_create_list_rename_delete(client, encoder) -> None:
    _, cols = points(client, CIFAR, encoder)
    ids = cols["id"][:7]
    created = client.post("/api/sets", json={"name": " api set ", "item_ids": ids})
    assert created.status_code == 201, created.text
    set_ = created.json()
    assert set_["name"] == "api set" and set_["item_ids"] == ids and set_["n_items"] == 7
    assert set_["id"] in [s["id"] for s in client.get("/api/sets").json()]
    taken = client.post("/api/sets", json={"name": "api set", "item_ids": ids[:1]})
    assert taken.status_code == 409 and "already exists" in detail(taken)
    same = client.patch(f"/api/sets/{set_['id']}", json={"name": " api set "})
    assert same.status_code == 200, same.text
    assert same.json() == set_  # its own name: nothing changes, updated_at included
    renamed = client.patch(f"/api/sets/{set_['id']}", json={"name": "renamed"}).json()
    assert renamed["name"] == "renamed" and renamed["updated_at"] > set_["updated_at"]
    assert client.get(f"/api/sets/{set_['id']}").json()["name"] == "renamed"
    assert client.delete(f"/api/sets/{set_['id']}").status_code == 204
    gone = client.get(f"/api/sets/{set_['id']}")
    assert gone.status_code == 404 and str(set_["id"]) in detail(gone)


def test_a_set_of_unknown_items_is_a_404_naming_them_and_why(client, encoder) -> None:
    """Worded as the items and intents routes word unknown ids ("unknown item id ..."),
    the first few named, each with why: sets span datasets, so an id is unknown because
    its dataset has no such item, no dataset has its prefix, or it is no item id."""
    known = points(client, CIFAR, encoder)[1]["id"][0]
    before = client.get("/api/sets").json()
    cases = [
        (
            [known, f"{CIFAR}/images/99999.png"],
            f"unknown item id '{CIFAR}/images/99999.png' (dataset '{CIFAR}' has no item "
            "with this id)",
        ),
        (["nope/x"], "unknown item id 'nope/x' (the workspace has no dataset 'nope')"),
        ([known, "x"], "unknown item id 'x' (not an item id: item ids are '<dataset>/"),
        (
            [known, *(f"nope/{i}" for i in range(5)), f"{CIFAR}/gone"],
            "6 of 7 item ids are unknown: 'nope/0', 'nope/1', 'nope/2' (the workspace has no "
            "dataset 'nope'); and 3 more",
        ),
        (
            ["nope/0", f"{CIFAR}/gone", "nope/1"],
            "3 of 3 item ids are unknown: 'nope/0', 'nope/1' (the workspace has no dataset "
            f"'nope'); '{CIFAR}/gone' (dataset '{CIFAR}' has no item with this id)",
        ),
    ]
    for ids, message in cases:
        response = client.post("/api/sets", json={"name": "unknown members", "item_ids": ids})
        assert response.status_code == 404, response.text
        assert response.json()["detail"].startswith(message), response.text
    assert client.get("/api/sets").json() == before  # nothing was created


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "needle"),
    [
        ("GET", "/api/datasets/nope", {}, "nope"),
        ("POST", "/api/projection", {"json": {"dataset": "nope", "encoder": "x"}}, "nope"),
        ("GET", "/api/projection/points", {"params": {"dataset": "nope", "encoder": "x"}}, "nope"),
        ("GET", "/api/items/cifar10-demo/images/99999.png", {}, "99999"),
        ("GET", "/api/items/nope/x/neighbours", {}, "nope/x"),
        ("GET", "/api/items/cifar10-demo/images/99999.png/thumbnail", {}, "99999"),
        ("GET", "/api/items/..%2F..%2Fetc%2Fpasswd/thumbnail", {}, "passwd"),
        ("GET", "/api/jobs/nope", {}, "nope"),
        ("GET", "/api/sets/999999", {}, "999999"),
        ("DELETE", "/api/sets/99999999999999999999", {}, "99999999999999999999"),
        ("GET", "/api/alignment/runs/99999999999999999999", {}, "99999999999999999999"),
        ("DELETE", "/api/intents/99999999999999999999", {}, "99999999999999999999"),
        ("GET", "/api/no-such-route", {}, "no-such-route"),
        ("DELETE", "/api/no-such-route", {}, "DELETE /api/no-such-route"),
        ("POST", "/api/sets", {"json": {"name": "s", "item_ids": ["cifar10-demo/x"]}}, "x"),
        (  # an item of another dataset than the one asked for: say whose it is
            "GET",
            "/api/items/cifar10-demo/images/00000.png",
            {"params": {"dataset": COCO}},
            f"belongs to dataset '{CIFAR}', not to the dataset '{COCO}'",
        ),
        (
            "GET",
            "/api/items/cifar10-demo/images/00000.png/neighbours",
            {"params": {"dataset": COCO}},
            f"belongs to dataset '{CIFAR}'",
        ),
        (
            "GET",
            "/api/items/cifar10-demo/images/99999.png",
            {"params": {"dataset": COCO}},
            "unknown item id 'cifar10-demo/images/99999.png'",
        ),
        ("DELETE", "/api/items/uploads/nope", {}, "unknown item id 'uploads/nope'"),
    ],
)
def test_unknown_things_are_404_with_a_message(client, method, path, kwargs, needle) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 404, response.text
    assert needle in detail(response)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/metrics/task", {}),
        ("/api/projection/points", {}),
        ("/api/projection/points", {"version": "other@1"}),
        ("/api/projection", {"version": "pocket@x"}),
    ],
)
def test_unknown_encoder_is_404(client, path, params) -> None:
    """With a ``version`` too: the unknown encoder is named, not the version blamed."""
    response = client.get(path, params={"dataset": CIFAR, "encoder": "nope", **params})
    assert response.status_code == 404, response.text
    assert "encoder 'nope'" in detail(response)


def test_text_items_have_no_thumbnail(client, encoder) -> None:
    _, cols = points(client, CIFAR, encoder)
    text_id = cols["id"][int(np.flatnonzero(cols["kind"] == 2)[0])]
    response = client.get(f"/api/items/{quote(text_id, safe='')}/thumbnail")
    assert response.status_code == 404 and "only images" in detail(response)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("POST", "/api/projection", {"json": {"encoder": "x"}}, "dataset"),
        (
            "POST",
            "/api/projection",
            {"json": {"dataset": CIFAR, "encoder": "x", "method": "nn"}},
            "method",
        ),
        (
            "POST",
            "/api/projection",
            {"content": b"{not json", "headers": JSON_HEADERS},
            "body",
        ),
        ("GET", "/api/projection/points", {"params": {"dataset": CIFAR}}, "encoder"),
        ("GET", "/api/items/cifar10-demo/images/00000.png/neighbours", {"params": {"k": 0}}, "k"),
        ("POST", "/api/sets", {"json": {"name": "empty", "item_ids": []}}, "item_ids"),
        ("POST", "/api/sets", {"json": {"name": "  ", "item_ids": ["a"]}}, "name"),
        (  # a zero-width space draws nothing: no name to show in the sets panel
            "POST",
            "/api/sets",
            {"json": {"name": "\u200b", "item_ids": ["cifar10-demo/images/00000.png"]}},
            "name",
        ),
        ("PATCH", "/api/sets/1", {"json": {}}, "name"),
        ("POST", "/api/sets", {"json": {"name": "c", "item_ids": ["a"], "color": ""}}, "color"),
        (  # JSON has no NaN: the answer must still be a 422, not a failure to render it
            "POST",
            "/api/sets",
            {"content": b'{"name": NaN, "item_ids": [1e400]}', "headers": JSON_HEADERS},
            "name",
        ),
        (  # a lone surrogate parses, is refused, and is echoed as an escape (not a 500)
            "POST",
            "/api/sets",
            {"content": b'{"name": "x", "item_ids": ["\\ud800"]}', "headers": JSON_HEADERS},
            "item_ids",
        ),
        ("GET", "/api/sets/abc", {}, "set_id"),
    ],
)
def test_malformed_requests_are_422_naming_the_field(client, method, path, kwargs, field) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    locations = [entry["loc"] for entry in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


@pytest.mark.parametrize(
    ("concepts", "field", "message"),
    [
        ({"concept_a": "", "concept_b": "dog"}, "concept_a", "at least 1 character"),
        ({"concept_a": "   ", "concept_b": "dog"}, "concept_a", "at least 1 character"),
        ({"concept_a": "cat", "concept_b": "x" * 201}, "concept_b", "at most 200 characters"),
        ({"concept_a": "\u200b", "concept_b": "dog"}, "concept_a", "no visible character"),
        ({"concept_a": "cat", "concept_b": " \ufeff\u2060 "}, "concept_b", "no visible character"),
        ({"concept_a": "cat", "concept_b": "cat"}, "concept_b", "differ"),
        ({"concept_a": "cat", "concept_b": "Cat"}, "concept_b", "embed alike"),
        ({"concept_a": "cat", "concept_b": "dog", "concept_c": "day"}, "concept_d", "both"),
        (
            {"concept_a": "cat", "concept_b": "dog", "concept_c": "day", "concept_d": "day"},
            "concept_d",
            "differ",
        ),
    ],
)
def test_bad_concepts_get_a_clear_message(client, encoder, concepts, field, message) -> None:
    body = {"dataset": CIFAR, "encoder": encoder, **concepts}
    response = client.post("/api/concept-axis", json=body)
    assert response.status_code == 422
    entries = response.json()["detail"]
    assert any(field in e["loc"] and message in e["msg"] for e in entries), entries


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/sets", {}),
        ("/api/settings", {}),
        ("/api/jobs", {}),
        ("/api/projection/points", {"dataset": CIFAR}),  # a binary frame
        ("/api/openapi.json", {}),  # gzipped (over the middleware's minimum size)
        ("/api/sets/999999", {}),  # 404s stay 404s
        ("/api/no-such-route", {}),
    ],
)
def test_head_answers_as_get_without_a_body(client, encoder, path, params) -> None:
    params = {"encoder": encoder, **params} if "dataset" in params else params
    headers = {"accept-encoding": "gzip"}
    got = client.get(path, params=params, headers=headers)
    head = client.head(path, params=params, headers=headers)
    assert head.status_code == got.status_code, (head.status_code, got.text)
    assert head.content == b""
    for name in ("content-type", "content-length", "content-encoding"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_static_files_come_only_from_the_built_ui(client) -> None:
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/../cli.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"root:" not in response.content


# ---------------------------------------------------------------- units


def test_frame_round_trip() -> None:
    columns = {"x": np.array([1.5, -2.0], np.float32), "k": np.array([0, 2]), "id": ["a", "é/#"]}
    header, out = decode_frame(
        encode_frame(columns, {"x": "float32", "k": "uint8", "id": "utf8"}, {"m": 1})
    )
    assert header["n"] == 2 and header["meta"] == {"m": 1}
    assert out["x"].tolist() == [1.5, -2.0] and out["k"].tolist() == [0, 2]
    assert out["id"] == ["a", "é/#"]
    assert all(spec["offset"] % 8 == 0 for spec in header["columns"])


def test_the_view_cache_keeps_only_the_most_recently_used_views(tmp_path_factory) -> None:
    from browser.support import workspace_copy

    from modalchorus.server.views import ViewCache
    from modalchorus.store import Workspace

    with Workspace.open(workspace_copy(tmp_path_factory, "views")) as workspace:
        encoder = sorted(workspace.embedded_encoders())[0]
        views = ViewCache(workspace, max_views=1)
        cifar = views.get(CIFAR, encoder)
        assert views.get(CIFAR, encoder) is cifar  # cached
        coco = views.get(COCO, encoder)
        assert views.get(COCO, encoder) is coco
        again = views.get(CIFAR, encoder)  # evicted by COCO's view: built anew
        assert again is not cifar and again.ids == cifar.ids


def test_serve_listens_on_loopback_by_default() -> None:
    from modalchorus.server import DEFAULT_HOST, DEFAULT_PORT

    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8765)


def test_create_app_refuses_a_folder_that_is_not_a_workspace(tmp_path: Path) -> None:
    from modalchorus.server import create_app
    from modalchorus.store import NotAWorkspaceError

    with pytest.raises(NotAWorkspaceError):
        create_app(tmp_path)
