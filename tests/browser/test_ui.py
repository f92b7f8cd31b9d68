"""The web UI in headless Chromium against the real server and workspace."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from browser.support import CIFAR, COCO, COCO_IMAGES, IMAGES_PER_CLASS, click_point

N_CIFAR = 10 * IMAGES_PER_CLASS + 50
N_COCO = COCO_IMAGES * 6


def pixel_std(png: bytes) -> float:
    """Standard deviation of the grey levels of a screenshot (0 for a blank one)."""
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32).std())


def sets_named(server, name: str) -> list[dict]:
    return [s for s in httpx.get(f"{server.url}/api/sets").json() if s["name"] == name]


def test_page_loads_without_errors_and_draws_every_item(app, server) -> None:
    app.open()
    settings = httpx.get(f"{server.url}/api/settings").json()
    first = settings["datasets"][0]
    assert app.probe("choice.dataset") == first["name"] == CIFAR
    assert app.probe("itemCount") == first["n_images"] + first["n_texts"] == N_CIFAR
    assert app.probe("pointCount") == N_CIFAR
    assert app.page.locator(".concept-label").count() == 10  # one label per class
    assert app.page.locator("[data-metric=accuracy]").inner_text() != "–"
    assert app.page.locator("[data-metric=inter_T]").first.inner_text() != "–"
    # The agreement says what it chose among: the class prompts, not every text.
    text = app.page.locator("[data-metric=n_concepts]").inner_text()
    assert text.strip() == "(nearest of 50 texts)"
    assert app.errors == []


def test_projection_screenshot_is_not_blank(app) -> None:
    app.open()
    png = app.page.locator(".projection-view .stage").screenshot()
    assert pixel_std(png) > 5.0
    app.page.evaluate("window.__modalchorus.lasso([[-2, -2], [2, -2], [2, 2], [-2, 2]])")
    assert app.probe("pointCount") == N_CIFAR


def test_the_map_downloads_as_csv(app) -> None:
    app.open()
    link = app.page.get_by_role("link", name="download CSV")
    with app.page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"mfm-{CIFAR}.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "id,kind,dataset,label,text,image_id,source,x,y"
    assert len(lines) == 1 + N_CIFAR
    assert app.errors == []


def test_switching_dataset_draws_its_items_and_retrieval_metrics(app) -> None:
    app.open()
    glyph_legend = app.page.locator(".legend-entry.glyphs")
    assert glyph_legend.inner_text().split() == ["image", "concept"]  # CIFAR: no captions
    app.page.select_option("select[name=dataset]", COCO)
    app.page.wait_for_function(
        f"window.__modalchorus.ready && window.__modalchorus.choice.dataset === '{COCO}'"
    )
    assert app.probe("pointCount") == N_COCO
    assert app.page.locator("[data-metric='t2i_R@1']").inner_text() != "–"
    # Unlabelled captions: coloured by modality (CIFAR's label colouring does not apply).
    assert app.page.locator("select[name=colorBy]").input_value() == "modality"
    app.page.locator(".legend-entry", has_text="caption").first.wait_for()
    # Coloured by kind, the colour key is the glyph key: each kind listed once.
    assert app.page.locator(".legend").inner_text().split() == ["image", "caption"]
    assert glyph_legend.count() == 0
    assert f"dataset={COCO}" in app.page.url
    app.page.reload()
    app.wait_ready()
    assert app.probe("choice.dataset") == COCO  # the URL keeps the settings
    assert app.errors == []


def test_back_and_forward_step_through_the_chosen_settings(app) -> None:
    app.open(f"?dataset={CIFAR}&color=wat")
    assert "color=label" in app.page.url  # the colouring the page fell back to
    colour = app.page.locator("select[name=colorBy]")
    colour.select_option("correct")
    click_point(app.page, 0)
    app.page.select_option("select[name=dataset]", COCO)
    app.page.wait_for_function(
        f"window.__modalchorus.ready && window.__modalchorus.choice.dataset === '{COCO}'"
    )
    # CIFAR's item and its neighbours are gone with it; the corrected colouring is kept.
    assert app.probe("detailId") is None
    app.page.locator(".panel.detail .hint", has_text="Click a point").wait_for()
    assert "color=modality" in app.page.url
    assert "color=modality" in app.page.evaluate("JSON.stringify(localStorage)")
    app.page.locator("button[data-tab=axis]").click()

    app.page.go_back()
    app.page.locator("button[data-tab=projection].active").wait_for()
    app.page.go_back()
    app.page.wait_for_function(
        f"window.__modalchorus.ready && window.__modalchorus.choice.dataset === '{CIFAR}'"
    )
    assert colour.input_value() == "correct"
    app.page.go_back()
    app.page.wait_for_function("window.__modalchorus.choice.colorBy === 'label'")
    assert colour.input_value() == "label"
    app.page.go_forward()
    app.page.wait_for_function("window.__modalchorus.choice.colorBy === 'correct'")
    assert app.errors == []


def test_clicking_the_selected_point_opens_it(app) -> None:
    app.open()
    app.page.evaluate("window.__modalchorus.selectRows([0])")  # e.g. a point just added
    assert app.probe("detailId") is None
    shown = click_point(app.page, 0)
    assert app.probe(f"indexOf({shown!r})") == 0
    assert app.errors == []


def test_a_cancelled_fit_offers_to_fit_again(app) -> None:
    app.open()
    job = {"id": "fit1", "kind": "projection", "progress": 0.0, "message": "fitting"}
    job |= {"created_at": 0.0, "updated_at": 0.0}
    asked: list[str] = []

    def fitting(route) -> None:
        asked.append(route.request.post_data_json["method"])
        route.fulfill(json={"status": "fitting", "job": job | {"status": "running"}})

    cancelled = json.dumps(job | {"status": "cancelled", "message": "cancelled"})
    app.page.route("**/api/projection", fitting)
    app.page.route(
        "**/api/jobs/fit1/events",
        lambda route: route.fulfill(
            content_type="text/event-stream", body=f"event: progress\ndata: {cancelled}\n\n"
        ),
    )
    app.page.select_option("select[name=method]", "pca")
    again = app.page.locator(".status button", has_text="fit again")
    again.wait_for()
    assert "cancelled" in app.page.locator(".status").inner_text()
    assert app.page.locator(".projection-view .legend").inner_text() == ""  # no stale key
    with app.page.expect_request("**/api/projection"):
        again.click()
    again.wait_for()
    assert asked == ["pca", "pca"]
    assert app.errors == []


def test_reopening_the_page_restores_the_last_settings(app) -> None:
    app.open()
    app.page.select_option("select[name=dataset]", COCO)
    app.page.wait_for_function(
        f"window.__modalchorus.ready && window.__modalchorus.choice.dataset === '{COCO}'"
    )
    app.page.locator("button[data-tab=axis]").click()
    app.open()  # the bare address, as a bookmark or a new tab opens it
    assert app.probe("choice.dataset") == COCO
    assert "view=axis" in app.page.url
    assert app.page.locator("button[data-tab=axis]").get_attribute("class") == "tab active"
    assert app.errors == []


def test_lasso_creates_a_set_that_survives_a_reload(app, server) -> None:
    app.open()
    app.page.evaluate("window.__modalchorus.lasso([[-2, -2], [0, -2], [0, 2], [-2, 2]])")
    form = app.page.locator(".save-set")
    count = int(form.locator(".selection-count").get_attribute("data-count"))
    assert 0 < count < N_CIFAR
    form.locator("input[name=set_name]").fill("left half")
    form.locator("button[type=submit]").click()
    app.page.locator(".set", has_text="left half").wait_for()
    assert sets_named(server, "left half")[0]["n_items"] == count

    app.page.reload()
    app.wait_ready()
    row = app.page.locator(".set", has_text="left half")
    assert row.locator(".set-count").inner_text() == str(count)
    app.page.select_option("select[name=colorBy]", "set")
    app.page.locator(".legend-entry", has_text="left half").wait_for()
    # "show" selects the set's points, as a legend click does (ready to save or align).
    row.locator(".set-name").click()
    assert len(app.probe("selection()")) == count
    assert app.page.locator(".selection-count").get_attribute("data-count") == str(count)

    patches: list[str] = []
    app.page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    row.locator("button", has_text="rename").click()
    app.page.locator(".rename-input").fill("nope")
    app.page.locator(".rename-input").press("Escape")  # cancels
    app.page.locator(".set-name", has_text="left half").wait_for()
    row.locator("button", has_text="rename").click()
    app.page.locator(".rename-input").fill("west")
    app.page.locator(".rename-input").press("Enter")
    app.page.locator(".set", has_text="west").wait_for()
    app.page.wait_for_timeout(200)
    assert len(patches) == 1  # saved once: not again when the input goes away
    west = app.page.locator(".set", has_text="west")
    west.locator("button", has_text="delete").click()
    west.locator("button", has_text="no").click()  # deleting asks first
    west.locator("button", has_text="delete").click()
    west.locator("button", has_text="yes").click()
    app.page.locator(".set", has_text="west").wait_for(state="detached")
    assert not sets_named(server, "west") and not sets_named(server, "left half")
    assert app.errors == []


def test_a_legend_entry_selects_its_points_for_a_set(app, server) -> None:
    from modalchorus.server.frames import decode_frame

    app.open(f"?dataset={CIFAR}&color=predicted")
    params = {"dataset": CIFAR, "encoder": app.probe("choice.encoder"), "method": "mfm"}
    header, cols = decode_frame(
        httpx.get(f"{server.url}/api/projection/points", params=params).content
    )
    cat = header["meta"]["label_names"].index("cat")
    # Coloured by predicted class: images predicted "cat" and the prompts naming it.
    images = cols["kind"] == 0
    expected = np.flatnonzero(np.where(images, cols["predicted"], cols["label"]) == cat)
    app.page.locator("button.legend-entry", has_text="cat").click()
    assert sorted(app.probe("selection()")) == expected.tolist()
    form = app.page.locator(".save-set")
    form.locator("input[name=set_name]").fill("predicted cats")
    form.locator("button[type=submit]").click()
    app.page.locator(".set", has_text="predicted cats").wait_for()
    (saved,) = sets_named(server, "predicted cats")
    assert saved["n_items"] == expected.size
    httpx.delete(f"{server.url}/api/sets/{saved['id']}").raise_for_status()  # shared workspace
    assert app.errors == []


def test_points_in_several_sets_get_their_own_colour(app, server) -> None:
    from modalchorus.server.frames import decode_frame

    params = {"dataset": CIFAR, "encoder": "", "method": "mfm"}
    app.open(f"?dataset={CIFAR}&color=set")
    params["encoder"] = app.probe("choice.encoder")
    _, cols = decode_frame(httpx.get(f"{server.url}/api/projection/points", params=params).content)
    ids = list(cols["id"])
    made = [
        httpx.post(f"{server.url}/api/sets", json={"name": name, "item_ids": ids[a:b]}).json()
        for name, (a, b) in (("first six", (0, 6)), ("three to nine", (3, 9)))
    ]
    try:
        app.page.reload()
        app.wait_ready()
        app.page.locator("button.legend-entry", has_text="in several sets").click()
        assert sorted(app.probe("selection()")) == [3, 4, 5]
        # A set's entry selects all its members, those it shares included.
        app.page.locator("button.legend-entry", has_text="first six").click()
        assert sorted(app.probe("selection()")) == [0, 1, 2, 3, 4, 5]
    finally:
        for made_set in made:
            httpx.delete(f"{server.url}/api/sets/{made_set['id']}")  # shared workspace
    assert app.errors == []


def test_the_settings_stay_on_one_row_in_an_800_pixel_window(app) -> None:
    app.page.set_viewport_size({"width": 800, "height": 600})
    app.open()
    heights = app.page.evaluate(
        "[...document.querySelectorAll('.settings .field')]"
        ".map((f) => f.getBoundingClientRect().top)"
    )
    assert len(heights) == 5 and max(heights) - min(heights) < 1  # one row, not wrapped


def test_drawn_lasso_with_the_mouse_selects_points(app) -> None:
    app.open()
    box = app.page.locator(".projection-view canvas").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    path = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.25)]
    app.page.keyboard.down("Shift")
    app.page.mouse.move(x0 + w * path[0][0], y0 + h * path[0][1])
    app.page.mouse.down()
    for fx, fy in path[1:]:
        app.page.mouse.move(x0 + w * fx, y0 + h * fy, steps=8)
    app.page.mouse.up()
    app.page.keyboard.up("Shift")
    count = app.page.locator(".selection-count").get_attribute("data-count")
    assert int(count) > 0


def test_images_draw_over_captions_and_events_name_the_right_items(app, server) -> None:
    """COCO is stored images first; the map draws captions first (images stay visible), so
    every event must translate draw order back to item order."""
    from modalchorus.server.frames import decode_frame

    app.open(f"?dataset={COCO}")
    params = {"dataset": COCO, "encoder": app.probe("choice.encoder"), "method": "mfm"}
    _, cols = decode_frame(httpx.get(f"{server.url}/api/projection/points", params=params).content)
    left = cols["x"] < (cols["x"].min() + cols["x"].max()) / 2  # the lasso's half, in GL units
    app.page.evaluate("window.__modalchorus.lasso([[-2, -2], [0, -2], [0, 2], [-2, 2]])")
    selected = app.page.evaluate("window.__modalchorus.selection()")
    assert sorted(selected) == np.flatnonzero(left).tolist()

    # The point drawn at an image's screen position is that image (images are on top);
    # one with no other image within 10 px, so that the click is not ambiguous.
    images = np.flatnonzero(cols["kind"] == 0)
    xy = np.array([app.probe(f"screenPosition({i})") for i in images])
    apart = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) + np.eye(len(images)) * 99
    image = int(images[np.flatnonzero(apart.min(axis=1) > 10)[0]])
    app.page.evaluate("window.__modalchorus.selectRows([])")
    assert click_point(app.page, image) == cols["id"][image]
    assert app.errors == []


#: Per kind (image, caption, concept text): draw layer and dot size (px) as projection.ts
#: draws them; sizes hold at the unzoomed map of a canvas wider than tall.
LAYER = np.array([1, 0, 2])
SIZE = np.array([5, 7, 15])


def pixels_where_nearest_is_not_on_top(xy: np.ndarray, kind: np.ndarray) -> list[tuple]:
    """Whole pixels (x, y, row on top) inside some dot where the dot drawn on top is not the
    one whose centre is nearest (what regl-scatterplot picks); none within 0.3 px of an edge."""
    n = len(kind)
    drawn = np.lexsort((np.arange(n), LAYER[kind])).argsort()  # later rows of a layer on top
    radius = SIZE[kind] / 2
    found: dict[tuple[int, int], tuple] = {}
    for i in range(n):
        x0, y0 = np.floor(xy[i] - radius[i]).astype(int)
        for x in range(x0, x0 + SIZE[kind[i]] + 2):
            for y in range(y0, y0 + SIZE[kind[i]] + 2):
                d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
                covering = np.flatnonzero(d < radius)
                if not covering.size or np.abs(d - radius).min() < 0.3:
                    continue
                top = int(covering[drawn[covering].argmax()])
                if top != d.argmin():
                    found[(x, y)] = (x, y, top, int(d.argmin()))
    return sorted(found.values())


def test_a_click_opens_the_point_drawn_on_top_there(app, server) -> None:
    """A click (and the hover preview) means the dot the user sees at the pointer: concept
    discs over image dots over caption halos, later rows over earlier ones. regl-scatterplot
    alone picks the nearest centre, e.g. a caption under an image dot a hair closer."""
    from modalchorus.server.frames import decode_frame

    tooltip = app.page.locator(".projection-view .tooltip")
    for dataset in (CIFAR, COCO):
        app.open(f"?dataset={dataset}")
        params = {"dataset": dataset, "encoder": app.probe("choice.encoder"), "method": "mfm"}
        _, cols = decode_frame(
            httpx.get(f"{server.url}/api/projection/points", params=params).content
        )
        box = app.page.locator(".projection-view canvas").bounding_box()
        assert box["width"] > box["height"]  # the dot sizes of SIZE
        rows = range(app.probe("pointCount"))
        xy = np.array([app.probe(f"screenPosition({i})") for i in rows]) + [box["x"], box["y"]]
        # One pixel per pair of kinds (on top, nearest): e.g. a concept disc over an image.
        cases = pixels_where_nearest_is_not_on_top(xy, cols["kind"])
        chosen = {(cols["kind"][t], cols["kind"][near]): (x, y, t) for x, y, t, near in cases}
        assert chosen, dataset
        for x, y, top in sorted(chosen.values()):
            app.page.evaluate("window.__modalchorus.selectRows([])")  # selected dots go on top
            app.page.evaluate("window.__modalchorus.detailId = null")
            app.page.mouse.move(x, y)
            assert tooltip.get_attribute("data-id") == cols["id"][top]
            app.page.mouse.click(x, y)
            app.page.wait_for_function("window.__modalchorus.detailId !== null")
            assert app.probe("detailId") == cols["id"][top], (dataset, x, y)
    assert app.errors == []


ALL_POINTS_ON_CANVAS = """(() => {
  const canvas = document.querySelector('.projection-view canvas');
  const [w, h] = [canvas.clientWidth, canvas.clientHeight];
  const probe = window.__modalchorus;
  for (let i = 0; i < probe.pointCount; i++) {
    const [x, y] = probe.screenPosition(i);
    if (!(x >= 0 && x <= w && y >= 0 && y <= h)) return false;
  }
  return probe.pointCount > 0;
})()"""


def test_the_whole_map_fits_a_canvas_taller_than_wide(app) -> None:
    app.page.set_viewport_size({"width": 760, "height": 1300})
    app.open()
    box = app.page.locator(".projection-view canvas").bounding_box()
    assert box["height"] > 1.5 * box["width"]
    app.page.wait_for_function(ALL_POINTS_ON_CANVAS, timeout=10_000)
    app.page.set_viewport_size({"width": 1280, "height": 800})  # a resize refits too
    app.page.set_viewport_size({"width": 700, "height": 1300})
    app.page.wait_for_function(ALL_POINTS_ON_CANVAS, timeout=10_000)
    app.page.click("button[title='Reset the view']")
    app.page.wait_for_function(ALL_POINTS_ON_CANVAS, timeout=10_000)
    assert app.errors == []


def test_small_windows_keep_the_map_and_the_concept_axis_usable(app) -> None:
    app.page.set_viewport_size({"width": 800, "height": 600})
    app.open(f"?dataset={CIFAR}")
    canvas = app.page.locator(".projection-view canvas").bounding_box()
    top, bottom = canvas["y"], canvas["y"] + canvas["height"]
    for control in (".projection-view .toolbar", ".projection-view .legend"):
        box = app.page.locator(control).bounding_box()  # beside the map, not over its points
        assert box["y"] + box["height"] <= top + 0.5 or box["y"] >= bottom - 0.5, control
    app.page.wait_for_function(ALL_POINTS_ON_CANVAS, timeout=10_000)

    app.page.locator("button[data-tab=axis]").click()
    app.page.check("input[name=second_axis]")
    view = app.page.locator(".axis-view").bounding_box()
    concept_d = app.page.locator("input[name=concept_d]").bounding_box()
    assert concept_d["x"] + concept_d["width"] <= view["x"] + view["width"] + 0.5
    app.page.fill("input[name=concept_a]", "an animal with fur and four legs")
    app.page.fill("input[name=concept_b]", "a vehicle with wheels and an engine")
    app.page.fill("input[name=concept_c]", "daytime")
    app.page.fill("input[name=concept_d]", "night")
    app.page.click(".axis-form button[type=submit]")
    app.page.wait_for_function("window.__modalchorus.axis.rendered", timeout=60_000)
    stage = app.page.locator(".axis-view .stage").bounding_box()
    assert stage["width"] >= 240 and stage["height"] >= 150
    left = app.page.locator(".axis-end.left").bounding_box()
    right = app.page.locator(".axis-end.right").bounding_box()
    assert left["x"] + left["width"] <= right["x"]  # the end labels do not overlap
    assert app.errors == []


VISIBLE_LABEL_BOXES = """[...document.querySelectorAll('.concept-label')]
  .filter((label) => getComputedStyle(label).visibility !== 'hidden')
  .map((label) => label.getBoundingClientRect())
  .map((r) => [r.left, r.top, r.right, r.bottom])"""


def test_class_labels_stay_inside_the_map(app) -> None:
    app.open()
    stage = app.page.locator(".projection-view .stage").bounding_box()
    right = stage["x"] + stage["width"]
    # Drag the map so that the right-most class centre sits 20 px from the right edge.
    labels = app.page.locator(".concept-label")
    centre = max(labels.nth(i).bounding_box()["x"] for i in range(labels.count()))
    start = (stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    app.page.mouse.move(*start)
    app.page.mouse.down()
    app.page.mouse.move(start[0] + (right - 20 - centre), start[1], steps=10)
    app.page.mouse.up()
    app.page.wait_for_timeout(300)
    for left, _, end, _ in app.page.evaluate(VISIBLE_LABEL_BOXES):
        assert stage["x"] <= left and end <= right + 0.5, (left, end, right)
    assert app.errors == []


def test_class_labels_that_would_overlap_are_hidden(app) -> None:
    app.open()
    assert len(app.page.evaluate(VISIBLE_LABEL_BOXES)) >= 1
    box = app.page.locator(".projection-view canvas").bounding_box()
    app.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(8):  # zoom far out: the ten class centres crowd together
        app.page.mouse.wheel(0, 800)
        app.page.wait_for_timeout(100)
    app.page.wait_for_timeout(500)
    shown = app.page.evaluate(VISIBLE_LABEL_BOXES)
    assert 1 <= len(shown) < 10
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert a[0] >= b[2] or a[2] <= b[0] or a[1] >= b[3] or a[3] <= b[1], (a, b)
    app.page.click("button[title='Reset the view']")
    app.page.wait_for_function(f"{VISIBLE_LABEL_BOXES}.length > {len(shown)}")
    assert app.errors == []


def test_the_map_the_sets_and_the_align_panel_agree_on_the_selection(app, server) -> None:
    """An empty lasso, Escape and a saved set each leave nothing selected anywhere: no
    panel may act on points the map no longer highlights."""
    app.open()
    before = len(httpx.get(f"{server.url}/api/sets").json())
    points = app.page.locator(".panel.align .intent-points")
    half = "window.__modalchorus.lasso([[-2, -2], [0, -2], [0, 2], [-2, 2]])"

    def assert_nothing_selected() -> None:
        app.page.locator(".save-set").wait_for(state="detached")
        assert app.probe("selection()") == []
        assert points.get_attribute("data-count") == "0"

    app.page.evaluate(half)
    count = app.page.locator(".selection-count").get_attribute("data-count")
    assert int(count) > 0 and points.get_attribute("data-count") == count
    app.page.evaluate("window.__modalchorus.lasso([[5, 5], [5.1, 5], [5.1, 5.1]])")
    notice = app.page.locator(".notice", has_text="no points")
    notice.wait_for()
    assert "nothing is selected" in notice.inner_text()
    assert_nothing_selected()

    app.page.evaluate(half)
    app.page.locator(".save-set").wait_for()
    app.page.locator(".projection-view canvas").hover()
    app.page.keyboard.press("Escape")  # regl-scatterplot deselects: the panels follow
    assert_nothing_selected()

    app.page.evaluate(half)
    form = app.page.locator(".save-set")
    form.locator("input[name=set_name]").fill("\u200b")  # nothing visible: not sent
    form.locator("button[type=submit]").click()
    assert len(httpx.get(f"{server.url}/api/sets").json()) == before
    form.locator("input[name=set_name]").fill("saved half")
    form.locator("button[type=submit]").click()
    app.page.locator(".set", has_text="saved half").wait_for()
    assert_nothing_selected()
    (saved,) = sets_named(server, "saved half")
    httpx.delete(f"{server.url}/api/sets/{saved['id']}").raise_for_status()  # shared workspace
    assert app.errors == []


def test_clicking_a_point_shows_its_neighbours(app) -> None:
    app.open()
    box = app.page.locator(".projection-view canvas").bounding_box()
    x, y = app.probe("screenPosition(0)")  # an image (images come first)
    app.page.mouse.move(box["x"] + x, box["y"] + y)
    app.page.locator(".tooltip img").wait_for()  # thumbnail on hover
    clicked = click_point(app.page, 0)
    assert app.probe(f"indexOf({clicked!r})") >= 0
    neighbours = app.page.locator(".neighbour")
    assert neighbours.count() == 10
    sims = [float(s) for s in app.page.locator(".neighbour .sim").all_inner_texts()]
    assert sims == sorted(sims, reverse=True)
    assert app.page.locator(".detail-body dd", has_text=clicked).count() == 1
    neighbours.first.click()  # a neighbour opens in turn
    app.page.wait_for_function(f"window.__modalchorus.detailId !== {clicked!r}")
    assert app.errors == []


def test_hover_tooltips_stay_inside_the_map(app) -> None:
    app.open()
    stage = app.page.locator(".projection-view .stage").bounding_box()
    canvas = app.page.locator(".projection-view canvas").bounding_box()
    for corner in ("right-most", "lowest"):  # the points nearest the map's edges
        axis = 0 if corner == "right-most" else 1
        row = app.page.evaluate(
            f"""(() => {{ const m = window.__modalchorus; let best = 0;
              for (let i = 1; i < m.pointCount; i++)
                if (m.screenPosition(i)[{axis}] > m.screenPosition(best)[{axis}]) best = i;
              return best; }})()"""
        )
        x, y = app.probe(f"screenPosition({row})")
        app.page.mouse.move(canvas["x"] + x, canvas["y"] + y)
        tooltip = app.page.locator(".projection-view .tooltip")
        tooltip.wait_for()
        app.page.wait_for_timeout(300)  # a caption's text arrives after the first paint
        tip = tooltip.bounding_box()
        assert tip["x"] + tip["width"] <= stage["x"] + stage["width"] + 0.5, corner
        assert tip["y"] + tip["height"] <= stage["y"] + stage["height"] + 0.5, corner
        app.page.mouse.move(canvas["x"] + 2, canvas["y"] + 2)
    assert app.errors == []


def test_concept_axis_renders_for_two_typed_concepts(app) -> None:
    app.open("?view=axis")
    app.page.fill("input[name=concept_a]", "a photo of a cat")
    app.page.fill("input[name=concept_b]", "a photo of a truck")
    app.page.click(".axis-form button[type=submit]")
    app.page.wait_for_function("window.__modalchorus.axis.rendered", timeout=60_000)
    assert app.probe("axis.pointCount") == N_CIFAR
    # Points of the axis preview on hover and open in the instance detail on click.
    canvas = app.page.locator(".axis-view canvas").bounding_box()
    x, y = app.probe("axis.screenPosition(0)")  # an image
    app.page.mouse.move(canvas["x"] + x, canvas["y"] + y)
    app.page.locator(".axis-view .tooltip img").wait_for()
    app.page.mouse.click(canvas["x"] + x, canvas["y"] + y)
    app.page.wait_for_function("window.__modalchorus.detailId !== null")
    assert app.probe("indexOf(window.__modalchorus.detailId)") >= 0
    assert app.page.locator(".dist-row").count() >= 10  # one distribution per class
    assert app.page.locator(".axis-end.right").inner_text().startswith("a photo of a truck")
    png = app.page.locator(".axis-view .stage").screenshot()
    assert pixel_std(png) > 5.0
    app.page.check("input[name=second_axis]")
    app.page.fill("input[name=concept_c]", "daytime")
    app.page.fill("input[name=concept_d]", "night")
    app.page.click(".axis-form button[type=submit]")
    app.page.locator(".axis-end.top").wait_for()
    assert app.errors == []


def test_bad_concepts_get_a_visible_message(app) -> None:
    app.open("?view=axis")
    submit = app.page.locator(".axis-form button[type=submit]")
    message = app.page.locator(".form-message")
    app.page.fill("input[name=concept_b]", "a dog")
    submit.click()
    assert "Concept A is empty" in message.inner_text()
    app.page.fill("input[name=concept_a]", "x" * 201)
    submit.click()
    assert "at most 200" in message.inner_text()
    app.page.fill("input[name=concept_a]", "\U0001f408" * 150)  # 150 characters, 300 UTF-16 units
    app.page.fill("input[name=concept_b]", "\u200b\u2060")
    submit.click()
    assert "Concept B has no visible character" in message.inner_text()
    app.page.fill("input[name=concept_b]", "a dog")
    app.page.fill("input[name=concept_a]", "a cat")
    app.page.check("input[name=second_axis]")
    app.page.fill("input[name=concept_c]", "day")
    app.page.fill("input[name=concept_d]", "day ")
    submit.click()
    assert "Concepts C and D are the same" in message.inner_text()
    assert not app.probe("axis.rendered")


def test_api_docs_render_offline_from_the_build(app, server) -> None:
    requested: list[str] = []
    app.page.on("request", lambda request: requested.append(request.url))
    app.page.goto(f"{server.url}/api/docs")
    app.page.locator(".opblock").first.wait_for()  # Swagger UI drew the operations
    assert app.page.url == f"{server.url}/docs.html"
    assert app.page.locator(".opblock").count() > 20
    assert app.page.locator(".opblock-summary-path", has_text="/api/projection").count() >= 1
    assert all(url.startswith((server.url, "data:")) for url in requested), requested
    assert app.errors == []
