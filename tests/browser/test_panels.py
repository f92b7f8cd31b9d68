"""The Augment and Align panels in headless Chromium, against a private server.

Both panels change the workspace (new items, a new active embedding version), so this
module serves its own copy of the small test workspace.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from browser.conftest import Page
from browser.support import CIFAR, IMAGES_PER_CLASS, LiveServer, click_point, workspace_copy

N_CIFAR = 10 * IMAGES_PER_CLASS + 50


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> Iterator[LiveServer]:
    server = LiveServer(workspace_copy(tmp_path_factory, "panels"))
    yield server
    server.stop()


@pytest.fixture()
def panels(browser, own_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield Page(page, own_server.url)
    context.close()


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_augment_panel_adds_images_and_texts_without_a_reload(panels, own_server) -> None:
    panels.open()
    page = panels.page
    page.evaluate("window.__unreloaded = true")
    before = panels.probe("pointCount")
    assert before == N_CIFAR
    panel = page.locator(".panel.augment")
    panel.locator("input[name=augment_files]").set_input_files(
        [
            {"name": "one.png", "mimeType": "image/png", "buffer": png(1)},
            {"name": "two.png", "mimeType": "image/png", "buffer": png(2)},
        ]
    )
    panel.locator("textarea[name=augment_texts]").fill("a photo of a rocket\n\na snowy mountain")
    panel.locator("input[name=augment_set]").fill("my additions")
    panel.locator("button[type=submit]").click()
    panel.locator(".augment-message", has_text="Added 4 new items").wait_for()
    panels.wait_ready()
    assert page.evaluate("window.__unreloaded") is True  # no page reload
    assert panels.probe("pointCount") == before + 4
    added = panels.probe("augmented")
    assert len(added) == 4 and all(panels.probe(f"indexOf({i!r})") >= 0 for i in added)
    assert page.locator(".selection-count").get_attribute("data-count") == "4"
    page.locator(".set", has_text="my additions").wait_for()
    sets = httpx.get(f"{own_server.url}/api/sets").json()
    assert [s["n_items"] for s in sets if s["name"] == "my additions"] == [4]

    # An added item can be removed from its detail; its set keeps the others.
    shown = click_point(page, panels.probe(f"indexOf({added[0]!r})"))
    assert shown in added
    page.locator(".panel.detail button.remove-item").click()
    page.locator(".notice", has_text=f"Removed the image {shown}").wait_for()
    panels.wait_ready()
    assert panels.probe("pointCount") == before + 3 and panels.probe(f"indexOf({shown!r})") < 0
    sets = httpx.get(f"{own_server.url}/api/sets").json()
    assert [s["n_items"] for s in sets if s["name"] == "my additions"] == [3]
    before += 3

    # A file that is not an image: the panel names it, nothing is added.
    panel.locator("input[name=augment_files]").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}]
    )
    panel.locator("button[type=submit]").click()
    error = panel.locator(".augment-message.error")
    error.wait_for()
    assert "notes.txt: not an image" in error.inner_text()
    assert panels.probe("pointCount") == before

    # The server takes the image but refuses the (overlong) text: the map shows the image
    # and the message says both.
    panel.locator("input[name=augment_files]").set_input_files(
        [{"name": "three.png", "mimeType": "image/png", "buffer": png(3)}]
    )
    panel.locator("textarea[name=augment_texts]").fill("x" * 1001)
    panel.locator("button[type=submit]").click()
    error = panel.locator(".augment-message.error", has_text="Added 1 new item")
    error.wait_for()
    assert "The texts were not added: texts #1: " in error.inner_text()
    panels.wait_ready()
    assert panels.probe("pointCount") == before + 1
    errors = [e for e in panels.errors if "422" not in e]  # the refused upload's console line
    assert errors == []


def _prepare(server: LiveServer, encoder: str) -> list[int]:
    """Make the set "cat prompts"; return the rows of two dog images in the view."""
    from modalchorus.server.frames import decode_frame

    params = {"dataset": CIFAR, "encoder": encoder, "method": "mfm"}
    header, cols = decode_frame(
        httpx.get(f"{server.url}/api/projection/points", params=params).content
    )
    names = header["meta"]["label_names"]
    ids = np.array(cols["id"])
    cats = ids[(cols["kind"] == 2) & (cols["label"] == names.index("cat"))].tolist()
    httpx.post(f"{server.url}/api/sets", json={"name": "cat prompts", "item_ids": cats})
    dogs = np.flatnonzero((cols["kind"] == 0) & (cols["label"] == names.index("dog")))
    return dogs[:2].tolist()


def test_align_panel_runs_an_intent_compares_and_undoes(panels, own_server) -> None:
    base = httpx.get(f"{own_server.url}/api/settings").json()["encoders"][0]
    rows = _prepare(own_server, base)
    panels.open()
    page = panels.page
    panel = page.locator(".panel.align")
    assert panels.probe("align.version") == base
    page.evaluate(f"window.__modalchorus.selectRows({rows})")
    assert panel.locator(".intent-points").get_attribute("data-count") == "2"
    panel.locator("select[name=target]").select_option(label="cat prompts (5)")
    panel.locator("input[name=strength]").fill("3")
    panel.locator("button.add-intent").click()
    panel.locator(".intent").nth(1).wait_for()
    assert panel.locator(".intent").count() == 2
    assert "cat prompts" in panel.locator(".intent").first.inner_text()

    panel.locator("select[name=scope]").select_option("adapter")
    panel.locator("button.run-align").click()
    page.wait_for_function(
        "window.__modalchorus.ready && !window.__modalchorus.align.running"
        " && window.__modalchorus.align.compare === 'after'",
        timeout=300_000,
    )
    version = panels.probe("align.version")
    assert version != base and version.startswith(base) and "adapter" in version
    assert panel.locator(".align-version").inner_text() == version
    accuracy = panel.locator(".metric-delta[data-metric=accuracy]").first
    assert accuracy.get_attribute("data-dataset") == CIFAR
    assert "→" in accuracy.inner_text()
    assert panel.locator(".run.active").count() == 1

    # Before / after: the intent's points move between the two layouts of one frame.
    after = panels.probe(f"screenPosition({rows[0]})")
    panel.locator("button[data-compare=before]").click()
    page.wait_for_function(
        "window.__modalchorus.align.compare === 'before' && !window.__modalchorus.align.moving"
    )
    before = panels.probe(f"screenPosition({rows[0]})")
    assert np.hypot(after[0] - before[0], after[1] - before[1]) > 1.0
    panel.locator("button[data-compare=after]").click()
    page.wait_for_function(
        "window.__modalchorus.align.compare === 'after' && !window.__modalchorus.align.moving"
    )
    assert panels.probe(f"screenPosition({rows[0]})") == pytest.approx(after, abs=0.5)
    panel.locator(".moved-point:not(.elsewhere)").first.click()
    page.wait_for_function("window.__modalchorus.detailId !== null")

    # Undo: the base version is back on the map and in the history; redo is offered.
    panel.locator("button.undo").click()
    page.wait_for_function(
        f"window.__modalchorus.ready && window.__modalchorus.align.version === {base!r}"
    )
    assert panel.locator(".align-version").inner_text() == base
    assert panel.locator(".run.active").count() == 0
    assert panel.locator("button.redo").is_enabled()
    assert not panel.locator("button.undo").is_enabled()
    assert panels.probe("align.compare") is None  # nothing to compare at the base
    history = httpx.get(f"{own_server.url}/api/alignment/runs", params={"encoder": base}).json()
    assert history["active_encoder_id"] == base and history["can_redo"]
    assert panels.errors == []


def test_cancelling_a_run_in_the_align_panel_changes_nothing(panels, own_server) -> None:
    base = httpx.get(f"{own_server.url}/api/settings").json()["encoders"][0]
    rows = _prepare(own_server, base)
    history = httpx.get(f"{own_server.url}/api/alignment/runs", params={"encoder": base}).json()
    panels.open()
    page = panels.page
    panel = page.locator(".panel.align")
    version = panels.probe("align.version")
    page.evaluate(f"window.__modalchorus.selectRows({rows[:1]})")
    panel.locator("select[name=target]").select_option(label="cat prompts (5)")
    panel.locator("button.add-intent").click()
    panel.locator(".intent").first.wait_for()

    # LoRA embeds through the encoder every step: slow enough to cancel mid-way.
    panel.locator("select[name=scope]").select_option("lora")
    panel.locator("button.run-align").click()
    panel.locator(".align-progress .cancel-job").click()
    page.wait_for_function("!window.__modalchorus.align.running", timeout=120_000)
    assert "cancelled" in page.locator(".notices").inner_text()
    assert panels.probe("align.version") == version
    after = httpx.get(f"{own_server.url}/api/alignment/runs", params={"encoder": base}).json()
    assert after == history
    assert panels.errors == []
