"""Web UI load speed: page load to first full render of the projection, and bytes on the wire.

For each size (10,000 and 100,000 points by default) a synthetic workspace is built: images
(tiny generated pictures with one of 10 labels), one caption for every fourth image and the
50 class prompts, random clustered embeddings under a ``synthetic`` encoder and a stored
projection. ``modalchorus serve`` serves it; headless Chromium (Debian's, through Playwright)
opens the page and waits until every point is drawn. Per size: one cold load (the server
builds its view of the dataset on the first request) and ``--repeats`` warm loads.

    python benchmarks/bench_ui.py [--sizes 10000 100000] [--repeats 3]

Writes ``benchmarks/results/ui.json``; copy the figures into RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from browser.support import CHROMIUM, CHROMIUM_ARGS, LiveServer  # noqa: E402

from modalchorus.data.types import Dataset, ImageRecord  # noqa: E402
from modalchorus.server.projections import projection_name  # noqa: E402
from modalchorus.store import Workspace  # noqa: E402
from modalchorus.tasks.classification import with_class_prompts  # noqa: E402

ENCODER = "synthetic@bench"
DATASET = "synthetic"
CLASSES = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]
DIM = 32
VIEWPORT = {"width": 1280, "height": 800}


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _image(label: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (25 * label, 255 - 25 * label, 128))


def build_workspace(path: Path, n_points: int, seed: int = 0) -> dict[str, float]:
    """A workspace with ``n_points`` items of one dataset, embeddings and a projection.

    Returns
    -------
    dict
        Seconds spent on items, embeddings and the projection.
    """
    rng = np.random.default_rng(seed)
    n_prompts = 5 * len(CLASSES)
    n_images = int(round((n_points - n_prompts) / 1.25))
    n_captions = n_points - n_prompts - n_images
    labels = rng.integers(len(CLASSES), size=n_images)
    records = [
        ImageRecord(
            id=f"{i:07d}",
            content_hash=hashlib.sha256(f"img{i}".encode()).hexdigest(),
            load=lambda lab=int(labels[i]): _image(lab),
            label=CLASSES[labels[i]],
            captions=(f"a synthetic picture number {i} of {CLASSES[labels[i]]}",)
            if i < n_captions
            else (),
        )
        for i in range(n_images)
    ]
    dataset = with_class_prompts(Dataset(name=DATASET, images=records, classes=CLASSES))
    times = {}
    start = time.perf_counter()
    workspace = Workspace.create(path)
    workspace.add_dataset(dataset, thumbnail_size=8)
    times["items_s"] = time.perf_counter() - start

    start = time.perf_counter()
    items = workspace.items(dataset=DATASET)
    assert len(items) == n_points, (len(items), n_points)
    centres = rng.normal(size=(len(CLASSES), DIM))
    codes = items["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    vectors = centres[codes] + 0.8 * rng.normal(size=(n_points, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    workspace.put_embeddings(
        ENCODER, items["id"].tolist(), items["content_hash"].tolist(), vectors.astype(np.float32)
    )
    times["embeddings_s"] = time.perf_counter() - start

    start = time.perf_counter()
    layout = 4 * rng.normal(size=(len(CLASSES), 2))[codes] + rng.normal(size=(n_points, 2))
    workspace.put_projection(
        projection_name("pca", DATASET, ENCODER),
        ENCODER,
        items["id"].tolist(),
        layout.astype(np.float32),
        method="pca",
        params={"dataset": DATASET, "synthetic": True},
        metrics={},
    )
    times["projection_s"] = time.perf_counter() - start
    return times


def load_page(browser, url: str, expected: int) -> dict[str, float]:
    """Open ``url`` in a fresh context; time it to first full render and count bytes."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    received: dict[str, float] = {}
    cdp.on(
        "Network.loadingFinished",
        lambda e: received.__setitem__(e["requestId"], e["encodedDataLength"]),
    )
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function("window.__modalchorus && window.__modalchorus.ready", timeout=300_000)
    wall = time.perf_counter() - start
    probe = page.evaluate("window.__modalchorus")
    timings = probe["timings"]
    assert probe["pointCount"] == expected, (probe["pointCount"], expected)
    page.wait_for_timeout(200)  # let the last loadingFinished events arrive
    context.close()
    return {
        "script_start_ms": round(timings["start"], 1),
        "settings_ms": round(timings["settings"], 1),
        "projection_ready_ms": round(timings["ensured"], 1),
        "first_render_ms": round(timings["firstRender"], 1),
        "wall_ms": round(wall * 1000, 1),
        "fetch_points_ms": round(timings["fetchPoints"], 1),
        "decode_and_draw_ms": round(timings["draw"], 1),
        "frame_bytes": int(timings["frameBytes"]),
        "bytes_transferred": int(sum(received.values())),
        "requests": len(received),
        "console_errors": len(errors),
    }


def main() -> None:
    """Build, serve, load, and write ``benchmarks/results/ui.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ui.json")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    chromium = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for n in args.sizes:
            path = Path(tmp) / f"ws-{n}"
            build = build_workspace(path, n)
            server = LiveServer(path)
            try:
                query = f"?dataset={DATASET}&encoder={ENCODER}&method=pca&color=label"
                url = f"{server.url}/{query}"
                cold = load_page(browser, url, n)
                warm = [load_page(browser, url, n) for _ in range(args.repeats)]
            finally:
                server.stop()
            median = {
                key: statistics.median(w[key] for w in warm)
                for key in warm[0]
                if key.endswith("_ms")
            }
            results.append(
                {
                    "points": n,
                    "build_s": {k: round(v, 2) for k, v in build.items()},
                    "cold": cold,
                    "warm_median": median,
                    "warm": warm,
                }
            )
            print(json.dumps(results[-1]))
        browser.close()
    report = {
        "benchmark": "web UI: page load to first full render of the projection view",
        "date": date.today().isoformat(),
        "command": "python benchmarks/bench_ui.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpu": cpu_model(),
            "cores": len(os.sched_getaffinity(0)),
            "load_average_1min": {
                "before": round(load_before[0], 2),
                "after": round(os.getloadavg()[0], 2),
            },
            "python": platform.python_version(),
            "chromium": chromium.stdout.strip(),
            "webgl": "SwiftShader (software), headless",
            "viewport": VIEWPORT,
        },
        "notes": (
            "*_ms: performance.now() (ms since navigation start) when the app script starts, "
            "when /api/settings and /api/sets answered, when POST /api/projection answered "
            "and (first_render_ms) when every point is drawn (after the draw promise and one "
            "animation frame); fetch_points_ms / decode_and_draw_ms are durations; "
            "wall_ms is page.goto() to ready, measured by the driver; bytes_transferred: "
            "encodedDataLength of every response (HTML, JS, CSS, JSON, points frame) from "
            "the DevTools protocol. Cold = first load after the server started."
        ),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
