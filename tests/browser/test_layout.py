"""The layout in a small (800 × 600) and an ordinary (1280 × 800) window: the settings show
whole choices, a long legend scrolls, the concept axis's labels do not overlap (and each of
thirty sets' strips has its label), the concept axis keeps a usable plot with a second axis,
the confusion matrix fits the side panel, and notices cover neither the metrics nor any other
panel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from browser.support import CIFAR

SMALL = {"width": 800, "height": 600}
LARGE = {"width": 1280, "height": 800}

#: Each settings <select> beside the width its shown choice needs: the same select holding
#: only that option, out of the flow (a flex item would stretch).
SELECT_WIDTHS = """[...document.querySelectorAll('.settings select')].map((select) => {
  const alone = select.cloneNode(false);
  alone.append(select.selectedOptions[0].cloneNode(true));
  alone.style.cssText = 'position: absolute; visibility: hidden; min-width: 0; max-width: none';
  select.after(alone);
  const needed = alone.getBoundingClientRect().width;
  alone.remove();
  return [select.name, needed, select.getBoundingClientRect().width];
})"""

#: Text and box of each shown element matching a selector (the argument).
SHOWN_BOXES = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden')
  .map((el) => { const r = el.getBoundingClientRect();
    return { text: el.textContent, x: r.x, y: r.y, width: r.width, height: r.height }; })"""


def overlap(a: dict, b: dict) -> bool:
    """Whether two boxes overlap by more than half a pixel each way."""
    return (
        a["x"] < b["x"] + b["width"] - 0.5
        and b["x"] < a["x"] + a["width"] - 0.5
        and a["y"] < b["y"] + b["height"] - 0.5
        and b["y"] < a["y"] + a["height"] - 0.5
    )


def inside(a: dict, b: dict) -> bool:
    """Whether box ``a`` lies within box ``b`` (to half a pixel)."""
    return (
        b["x"] - 0.5 <= a["x"]
        and a["x"] + a["width"] <= b["x"] + b["width"] + 0.5
        and b["y"] - 0.5 <= a["y"]
        and a["y"] + a["height"] <= b["y"] + b["height"] + 0.5
    )


@contextmanager
def many_sets(server, count: int = 30) -> Iterator[None]:
    """``count`` disjoint sets of two CIFAR images each, deleted again (shared workspace)."""
    from modalchorus.server.frames import decode_frame

    encoder = httpx.get(f"{server.url}/api/settings").json()["encoders"][0]
    params = {"dataset": CIFAR, "encoder": encoder, "method": "mfm"}
    _, cols = decode_frame(httpx.get(f"{server.url}/api/projection/points", params=params).content)
    ids = [i for i, kind in zip(cols["id"], cols["kind"], strict=True) if kind == 0]
    made: list[dict] = []
    try:
        for k in range(count):
            body = {"name": f"group {k:02d}", "item_ids": ids[2 * k : 2 * k + 2]}
            answer = httpx.post(f"{server.url}/api/sets", json=body)
            answer.raise_for_status()
            made.append(answer.json())
        yield
    finally:
        for made_set in made:
            httpx.delete(f"{server.url}/api/sets/{made_set['id']}")


@pytest.mark.parametrize("window", [SMALL, LARGE], ids=["800x600", "1280x800"])
def test_the_settings_show_their_whole_choices(app, window) -> None:
    app.page.set_viewport_size(window)
    app.open(f"?dataset={CIFAR}&color=correct")  # the longest colouring's name
    for name, needed, width in app.page.evaluate(SELECT_WIDTHS):
        assert needed <= width + 0.5, (name, needed, width)
    assert app.errors == []


def test_a_long_legend_scrolls_and_leaves_the_map_its_room(app, server) -> None:
    app.page.set_viewport_size(SMALL)
    with many_sets(server):
        app.open(f"?dataset={CIFAR}&color=set")
        legend = app.page.locator(".projection-view .legend")
        box = legend.bounding_box()
        stage = app.page.locator(".projection-view .stage").bounding_box()
        assert box["height"] <= 80, box  # about three rows (all 31 entries took 122 px)
        assert stage["height"] >= 4 * box["height"]
        # Every entry can be scrolled into view, and the glyph key stays in it.
        last = legend.locator("button.legend-entry", has_text="group 29")
        last.scroll_into_view_if_needed()
        assert inside(last.bounding_box(), box)
        assert inside(legend.locator(".glyphs").bounding_box(), box)
    assert app.errors == []


def test_the_concept_axis_labels_do_not_overlap_in_a_small_window(app, server) -> None:
    app.page.set_viewport_size(SMALL)
    with many_sets(server):  # 31 strips: the 30 sets and "other" (the class prompts)
        app.open(f"?dataset={CIFAR}&color=set&view=axis")
        app.page.fill("input[name=concept_a]", "an animal")
        app.page.fill("input[name=concept_b]", "a vehicle")
        app.page.click(".axis-form button[type=submit]")
        app.page.wait_for_function("window.__modalchorus.axis.rendered", timeout=60_000)
        strips = app.page.evaluate(SHOWN_BOXES, ".axis-view .strip-label")
        ends = app.page.evaluate(SHOWN_BOXES, ".axis-view .axis-end")
    assert strips[0]["text"] == "group 00" and len(strips) >= 5
    assert [e["text"] for e in ends] == ["← an animal", "a vehicle →"]
    labels = strips + ends
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not overlap(a, b), (a, b)
    assert app.errors == []


@pytest.mark.parametrize("window", [SMALL, LARGE], ids=["800x600", "1280x800"])
def test_notices_cover_neither_the_metrics_nor_other_panels(app, window) -> None:
    app.page.set_viewport_size(window)
    app.open(f"?dataset={CIFAR}")
    tables = app.page.locator(".panel.metrics table")
    tables.last.wait_for()  # the projection quality, the side panel's last
    app.page.evaluate("document.querySelector('.side').scrollTop = 1e6")
    quality = tables.last.bounding_box()
    assert quality["y"] + quality["height"] <= window["height"]  # in view, at the bottom
    panels = [".side", ".settings", ".tabs"]
    panels += [".projection-view .toolbar", ".projection-view .legend", ".axis-view .axis-form"]
    panels += [".axis-view .axis-ends", ".axis-view .distributions"]
    for view in ("projection", "axis"):
        app.page.locator(f"button[data-tab={view}]").click()
        app.page.evaluate("window.__modalchorus.lasso([[5, 5], [5.1, 5], [5.1, 5.1]])")
        notice = app.page.locator(".notice").last
        notice.wait_for()
        box = notice.bounding_box()
        for i in range(tables.count()):
            assert not overlap(box, tables.nth(i).bounding_box()), (view, i)
        assert inside(box, app.page.locator(f".{view}-view .stage").bounding_box()), view
        for panel in panels:
            other = app.page.locator(panel)
            assert not other.is_visible() or not overlap(box, other.bounding_box()), panel
    assert app.errors == []


#: Whether an element's content is wider than its box (it scrolls or is cut sideways).
OVERFLOWS_X = "(el) => el.scrollWidth > el.clientWidth + 0.5"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR_CLASSES += ["dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize("window", [SMALL, LARGE], ids=["800x600", "1280x800"])
def test_the_confusion_matrix_fits_the_side_panel(app, window) -> None:
    app.page.set_viewport_size(window)
    app.open(f"?dataset={CIFAR}")
    matrix = app.page.locator(".panel.metrics table.confusion")
    matrix.wait_for()
    assert not app.page.locator(".panel.metrics .confusion-wrap").evaluate(OVERFLOWS_X)
    assert not app.page.locator(".side").evaluate(OVERFLOWS_X)
    assert inside(matrix.bounding_box(), app.page.locator(".panel.metrics").bounding_box())
    # Still readable: every count whole, every class name whole in its title, and on the page
    # too in the ordinary window.
    assert matrix.evaluate("(t) => parseFloat(getComputedStyle(t).fontSize)") >= 10
    for cell in matrix.locator("td").all():
        assert not cell.evaluate(OVERFLOWS_X), cell.text_content()
    for heads in ("th.row", "th.col"):
        assert [th.get_attribute("title") for th in matrix.locator(heads).all()] == CIFAR_CLASSES
    if window is LARGE:
        for name in matrix.locator("th.row span").all():
            assert not name.evaluate(OVERFLOWS_X), name.text_content()
    assert app.errors == []


def place_items(app, second_axis: bool = False) -> None:
    """Place the items on the axis "an animal" → "a vehicle" (and "indoors" → "outdoors")."""
    app.page.fill("input[name=concept_a]", "an animal")
    app.page.fill("input[name=concept_b]", "a vehicle")
    if second_axis:
        app.page.check("input[name=second_axis]")
        app.page.fill("input[name=concept_c]", "indoors")
        app.page.fill("input[name=concept_d]", "outdoors")
    app.page.click(".axis-form button[type=submit]")
    app.page.wait_for_function("window.__modalchorus.axis.rendered", timeout=60_000)
    if second_axis:  # drawn again (``rendered`` stays true)
        app.page.locator(".axis-end.top").wait_for(timeout=60_000)


def test_the_concept_axis_keeps_a_usable_plot_in_a_small_window(app) -> None:
    app.page.set_viewport_size(SMALL)
    app.open(f"?dataset={CIFAR}&view=axis")
    view = app.page.locator(".axis-view")
    stage = app.page.locator(".axis-view .stage")
    heights = []
    for second_axis in (False, True):
        place_items(app, second_axis)
        heights.append(stage.bounding_box()["height"])
        assert app.page.locator(".axis-end.right").is_visible()
        assert not view.evaluate(OVERFLOWS_X)
        # The view scrolls (not the page) to show the whole plot with its end labels.
        app.page.locator(".axis-ends").scroll_into_view_if_needed()
        shown = {"x": 0, "y": 0, **SMALL}
        assert inside(stage.bounding_box(), view.bounding_box()), second_axis
        assert inside(app.page.locator(".axis-ends").bounding_box(), shown), second_axis
    assert heights[1] >= 300 and heights[0] >= 300, heights  # two axes, one axis
    assert app.page.locator(".axis-end.top").is_visible()
    assert app.page.evaluate("document.scrollingElement.scrollTop") == 0
    assert app.errors == []


def test_the_concept_axis_has_room_to_spare_in_an_ordinary_window(app) -> None:
    app.page.set_viewport_size(LARGE)
    app.open(f"?dataset={CIFAR}&view=axis")
    view = app.page.locator(".axis-view")
    for second_axis in (False, True):
        place_items(app, second_axis)
        assert app.page.locator(".axis-view .stage").bounding_box()["height"] >= 400
        assert view.evaluate("(el) => el.scrollHeight <= el.clientHeight"), second_axis
    assert app.errors == []


def test_every_strip_of_thirty_sets_is_labelled_in_a_small_window(app, server) -> None:
    app.page.set_viewport_size(SMALL)
    with many_sets(server):  # 31 strips: the 30 sets and "other" (the class prompts)
        app.open(f"?dataset={CIFAR}&color=set&view=axis")
        place_items(app)
        labels = app.page.locator(".axis-view .strip-label")
        boxes = app.page.evaluate(SHOWN_BOXES, ".axis-view .strip-label")
        titles = [label.get_attribute("title") for label in labels.all()]
        stage = app.page.locator(".axis-view .stage").bounding_box()
        size = labels.first.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")
    names = [f"group {k:02d}" for k in range(30)] + ["other"]
    assert [box["text"] for box in boxes] == names  # all shown, whole (short names)
    assert titles == names  # whole on hover, had they been cut
    assert size >= 10
    for i, box in enumerate(boxes):
        assert inside(box, stage), box
        for other in boxes[i + 1 :]:
            assert not overlap(box, other), (box, other)
    assert app.errors == []
