"""Screenshots of every view for the README, taken in headless Chromium.

Point it at a running server (e.g. ``make run``, which serves the demo workspace):

    python tests/browser/screenshots.py --url http://127.0.0.1:8765 --out docs

or let it serve a workspace itself (``--workspace workspaces/demo``). It creates one set
through the lasso for the sets picture and deletes it again afterwards. For the Augment and
Align pictures it adds two Flickr8k photos and two texts to the workspace (uploads stay),
runs one alignment (undone again afterwards) and removes its intents and sets: point it at
a copy of a workspace you care about.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser.support import CHROMIUM, CHROMIUM_ARGS, LiveServer, click_point  # noqa: E402

VIEWPORT = {"width": 1440, "height": 900}
SET_NAME = "lasso example"
#: Photos from outside the demo workspace (Flickr8k test split) for the Augment picture.
UPLOAD_PHOTOS = ("images/1799271536_6e69c8f1dc.jpg", "images/1472230829_803818a383.jpg")
UPLOAD_TEXTS = "a photo of a dog running on the beach\na photo of people in a boat"


def first_misclassified(url: str, choice: dict) -> int:
    """Row of the first image whose zero-shot prediction is wrong (0 if there is none)."""
    from modalchorus.server.frames import decode_frame

    params = {k: choice[k] for k in ("dataset", "encoder", "method")}
    _, cols = decode_frame(httpx.get(f"{url}/api/projection/points", params=params).content)
    wrong = (cols["kind"] == 0) & (cols["predicted"] >= 0) & (cols["predicted"] != cols["label"])
    return int(wrong.argmax()) if wrong.any() else 0


def take(url: str, out: Path) -> list[Path]:
    """Open the UI at ``url`` and write ``ui-*.png`` into ``out``; returns the paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shot(page, name: str, selector: str | None = None) -> None:
        page.evaluate("document.querySelectorAll('.notice').forEach((n) => n.remove())")
        path = out / f"ui-{name}.png"
        if selector is None:
            page.screenshot(path=str(path))
        else:  # a panel: a tall window, so the scrolling side bar does not clip it
            page.set_viewport_size({"width": VIEWPORT["width"], "height": 2400})
            page.wait_for_timeout(300)
            page.locator(selector).screenshot(path=str(path))
            page.set_viewport_size(VIEWPORT)
        written.append(path)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        ready = "window.__modalchorus && window.__modalchorus.ready"
        page.goto(f"{url}/?dataset=cifar10-demo&color=correct")
        page.wait_for_function(ready, timeout=600_000)
        page.wait_for_timeout(500)
        shot(page, "projection")

        # Instance detail: the first misclassified image.
        row = first_misclassified(url, page.evaluate("window.__modalchorus.choice"))
        click_point(page, row)
        page.wait_for_timeout(500)
        shot(page, "detail")
        shot(page, "metrics", ".panel.metrics")

        # Sets: lasso the left third of the map and save it.
        page.evaluate("window.__modalchorus.lasso([[-1, -1], [-0.35, -1], [-0.35, 1], [-1, 1]])")
        page.locator(".save-set input[name=set_name]").fill(SET_NAME)
        page.locator(".save-set button[type=submit]").click()
        page.locator(".set", has_text=SET_NAME).wait_for()
        page.select_option("select[name=colorBy]", "set")
        page.locator(".legend-entry", has_text=SET_NAME).wait_for()
        page.wait_for_timeout(300)
        shot(page, "sets")

        # Concept axis, coloured by class, one strip per class.
        page.select_option("select[name=colorBy]", "label")
        page.click("button[data-tab=axis]")
        page.fill("input[name=concept_a]", "a photo of an animal")
        page.fill("input[name=concept_b]", "a photo of a vehicle")
        page.click(".axis-form button[type=submit]")
        page.wait_for_function("window.__modalchorus.axis.rendered", timeout=120_000)
        page.wait_for_timeout(300)
        shot(page, "concept-axis")
        delete_set(url)

        # Retrieval: COCO captions and photos.
        page.goto(f"{url}/?dataset=coco-mini&color=modality")
        page.wait_for_function(
            f"{ready} && window.__modalchorus.choice.dataset === 'coco-mini'", timeout=600_000
        )
        page.wait_for_timeout(500)
        shot(page, "retrieval")

        page.goto(f"{url}/?dataset=cifar10-demo&color=label")
        page.wait_for_function(ready, timeout=600_000)
        augment(page, shot)
        align(url, page, shot)
        browser.close()
    return written


def data_dir() -> Path:
    """The real datasets (``MODALCHORUS_DATA_DIR``, else ``../shared/datasets``)."""
    env = os.environ.get("MODALCHORUS_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "datasets"


def augment(page, shot) -> None:
    """Upload two photos and two texts through the Augment panel, tag them into a set."""
    panel = page.locator(".panel.augment")
    folder = data_dir() / "flickr8k_1k"
    panel.locator("input[name=augment_files]").set_input_files(
        [str(folder / photo) for photo in UPLOAD_PHOTOS]
    )
    panel.locator("textarea[name=augment_texts]").fill(UPLOAD_TEXTS)
    panel.locator("input[name=augment_set]").fill("my additions")
    panel.locator("button[type=submit]").click()
    panel.locator(".augment-message:not(.busy)").wait_for(timeout=300_000)
    page.wait_for_function("window.__modalchorus.ready", timeout=300_000)
    panel.locator("textarea[name=augment_texts]").fill(UPLOAD_TEXTS)  # shown as typed
    page.wait_for_timeout(500)
    shot(page, "augment-map")
    shot(page, "augment", ".panel.augment")


def align(url: str, page, shot) -> None:
    """Misclassified cat images -> the cat prompts: run, compare, screenshot, undo."""
    from modalchorus.server.frames import decode_frame

    choice = page.evaluate("window.__modalchorus.choice")
    params = {k: choice[k] for k in ("dataset", "encoder", "method")}
    frame = httpx.get(f"{url}/api/projection/points", params=params).content
    header, cols = decode_frame(frame)
    cat = header["meta"]["label_names"].index("cat")
    images, prompts = cols["kind"] == 0, cols["kind"] == 2
    wrong = images & (cols["label"] == cat) & (cols["predicted"] != cat)
    ids = [cols["id"][i] for i in range(header["n"]) if prompts[i] and cols["label"][i] == cat]
    made = httpx.post(f"{url}/api/sets", json={"name": "cat prompts", "item_ids": ids}).json()
    page.reload()  # the page reads the new set
    page.wait_for_function("window.__modalchorus && window.__modalchorus.ready", timeout=300_000)
    rows = [int(i) for i in wrong.nonzero()[0][:4]]
    page.evaluate(f"window.__modalchorus.selectRows({rows})")
    panel = page.locator(".panel.align")
    panel.locator("select[name=target]").select_option(str(made["id"]))
    panel.locator("input[name=strength]").fill("2")
    panel.locator("button.add-intent").click()
    panel.locator(".intent").nth(len(rows) - 1).wait_for()
    panel.locator("button.run-align").click()
    page.wait_for_function(
        "window.__modalchorus.ready && !window.__modalchorus.align.running"
        " && window.__modalchorus.align.compare === 'after'",
        timeout=900_000,
    )
    page.evaluate(f"window.__modalchorus.selectRows({rows})")
    page.wait_for_timeout(500)
    shot(page, "align-after")
    panel.locator("button[data-compare=before]").click()
    page.wait_for_function(
        "window.__modalchorus.align.compare === 'before' && !window.__modalchorus.align.moving"
    )
    page.wait_for_timeout(300)
    shot(page, "align-before")
    panel.locator("button[data-compare=after]").click()
    page.wait_for_function("!window.__modalchorus.align.moving")
    shot(page, "align", ".panel.align")
    # Leave the workspace as it was (but for the uploads and the recorded run).
    panel.locator("button.undo").click()
    page.wait_for_function("window.__modalchorus.align.runId === null")
    for intent in httpx.get(f"{url}/api/intents").json():
        httpx.delete(f"{url}/api/intents/{intent['id']}")
    for set_ in httpx.get(f"{url}/api/sets").json():
        if set_["name"] in ("cat prompts", "my additions"):
            httpx.delete(f"{url}/api/sets/{set_['id']}")


def delete_set(url: str) -> None:
    """Remove the example set again."""
    for set_ in httpx.get(f"{url}/api/sets").json():
        if set_["name"] == SET_NAME:
            httpx.delete(f"{url}/api/sets/{set_['id']}")


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="A running ModalChorus server.")
    where.add_argument("--workspace", type=Path, help="Serve this workspace meanwhile.")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    if args.url:
        paths = take(args.url.rstrip("/"), args.out)
    else:
        server = LiveServer(args.workspace.resolve())
        try:
            paths = take(server.url, args.out)
        finally:
            server.stop()
    sys.stdout.write("".join(f"{p}\n" for p in paths))


if __name__ == "__main__":
    main()
