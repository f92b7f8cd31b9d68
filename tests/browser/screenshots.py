"""Screenshots of every view for the README, taken in headless Chromium.

Point it at a running server (e.g. ``make run``, which serves the demo workspace):

    python tests/browser/screenshots.py --url http://127.0.0.1:8765 --out docs

or let it serve a workspace itself (``--workspace workspaces/demo``). It creates one set
through the lasso for the sets picture and deletes it again afterwards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser.support import CHROMIUM, CHROMIUM_ARGS, LiveServer, click_point  # noqa: E402

VIEWPORT = {"width": 1440, "height": 900}
SET_NAME = "lasso example"


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
        path = out / f"ui-{name}.png"
        (page.locator(selector) if selector else page).screenshot(path=str(path))
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
        browser.close()
    return written


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
