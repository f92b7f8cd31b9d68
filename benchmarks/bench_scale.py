"""Scale: how long the workspace steps take on a large captioned dataset.

Builds a workspace of ``--images`` images with ``--captions-per-image`` captions each
(default 5,000 x 10 = 55,000 items) without running any encoder:

* the images are tiny distinct PNG files (8 x 8 px, random pixels) and the captions short
  generated sentences, added with :meth:`~modalchorus.store.Workspace.add_dataset`;
* the embeddings are synthetic but structured 384-d unit vectors, stored under the
  ``pocket`` encoder's id with :meth:`~modalchorus.store.Workspace.put_embeddings`: each
  image is one of 50 cluster centres plus noise, each caption its image plus more noise, and
  each modality is shifted along its own direction (a modality gap). The noise levels put
  text->image Recall@5 near 0.8 at the default size.

Then it times, in one process:

* ``add_dataset`` and ``put_embeddings`` (and, apart, writing the PNG files);
* ``project_dataset(..., "mfm")``, split into the MFM fit (the stored
  ``metrics["fit_seconds"]``) and the rest (reading the embeddings, scoring the layout on at
  most :data:`~modalchorus.projecting.METRIC_MAX_POINTS` points, storing it);
* one ``adapter`` alignment run with one point-set intent (image 0 -> 3 captions of an image
  of another cluster): its total wall time and the phases its progress messages mark (read +
  tune + re-embed; place in the same frame + score the layout; task metrics before and
  after; store);
* ``task_metrics`` of the dataset (retrieval Recall@1/5/10 both ways) on the stored base
  embeddings, after reading them;
* the peak RSS of the process (``resource.getrusage``) after each step.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                        # 5,000 x 10
    .venv/bin/python benchmarks/bench_scale.py --images 1000 --captions-per-image 5 \\
        --output /tmp/scale.json
    .venv/bin/python benchmarks/bench_scale.py --workspace /tmp/big-ws  # keep the workspace

A small table is printed; ``--output`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_projection import machine
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATASET = "scale"
DIM = 384
N_CLUSTERS = 50
#: Noise added to a cluster centre to make an image, and to an image to make its caption
#: (each a unit vector times this factor).
IMAGE_NOISE = 1.0
CAPTION_NOISE = 4.0
#: Length of the shift of every image (text) along the image (text) direction.
MODALITY_GAP = 0.8
N_TARGET_CAPTIONS = 3

ADJECTIVES = ("red", "blue", "green", "small", "large", "old", "young", "happy", "shiny", "dark")
NOUNS = ("dog", "cat", "car", "bus", "tree", "house", "boat", "bird", "horse", "man", "child")
VERBS = ("sitting", "running", "standing", "lying", "parked", "flying", "swimming", "waiting")
PLACES = (
    "in a park",
    "on a street",
    "near the river",
    "at the beach",
    "in a kitchen",
    "on a hill",
    "in the snow",
    "under a bridge",
)


# ----------------------------------------------------------------------------- data


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_pngs(folder: Path, n_images: int, seed: int = 0) -> list[Path]:
    """Write ``n_images`` distinct 8 x 8 px RGB PNG files (random pixels) to ``folder``.

    Returns
    -------
    list of pathlib.Path
        The files, in image order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_images):
        path = folder / f"{i:06d}.png"
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def captions_of(image: int, n: int, rng: np.random.Generator) -> tuple[str, ...]:
    """``n`` distinct generated captions of image number ``image``."""
    words = [rng.choice(w, size=n) for w in (ADJECTIVES, NOUNS, VERBS, PLACES)]
    return tuple(
        f"a {a} {b} {c} {d} (photo {image}, caption {j})"
        for j, (a, b, c, d) in enumerate(zip(*words, strict=True))
    )


def build_dataset(paths: list[Path], captions_per_image: int, seed: int = 0):
    """A :class:`~modalchorus.data.Dataset` of the PNG files, with generated captions.

    Built as the ``captions.json`` loader builds one: record ids are the files' paths
    relative to their folder's parent (``images/000000.png``), hashes are the files' sha256.
    """
    from modalchorus.data._common import file_loader
    from modalchorus.data.types import Dataset, ImageRecord, sha256_bytes

    rng = np.random.default_rng(seed)
    records = [
        ImageRecord(
            id=f"{path.parent.name}/{path.name}",
            content_hash=sha256_bytes(path.read_bytes()),
            load=file_loader(path),
            captions=captions_of(i, captions_per_image, rng),
            source=str(path),
        )
        for i, path in enumerate(paths)
    ]
    return Dataset(name=DATASET, images=records)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def synthetic_vectors(
    is_image: np.ndarray, owner: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Structured unit vectors for items in workspace order.

    Parameters
    ----------
    is_image : numpy.ndarray of bool, shape (n_items,)
    owner : numpy.ndarray of int, shape (n_items,)
        Per item, the number of its image (itself for an image) in ``0 .. n_images - 1``.
    seed : int

    Returns
    -------
    vectors : numpy.ndarray of float32, shape (n_items, 384)
    cluster : numpy.ndarray of int, shape (n_images,)
        The cluster of each image.
    """
    rng = np.random.default_rng(seed)
    n_images = int(is_image.sum())
    centres = _unit(rng.normal(size=(N_CLUSTERS, DIM)))
    image_dir, text_dir = _unit(rng.normal(size=(2, DIM)))
    cluster = rng.integers(N_CLUSTERS, size=n_images)
    noise = _unit(rng.normal(size=(n_images, DIM)))
    images = _unit(centres[cluster] + IMAGE_NOISE * noise + MODALITY_GAP * image_dir)
    vectors = np.empty((len(is_image), DIM))
    vectors[is_image] = images[owner[is_image]]
    n_texts = int((~is_image).sum())
    noise = _unit(rng.normal(size=(n_texts, DIM)))
    texts = images[owner[~is_image]] + CAPTION_NOISE * noise + MODALITY_GAP * text_dir
    vectors[~is_image] = _unit(texts)
    return vectors.astype(np.float32), cluster


def image_numbers(items) -> np.ndarray:
    """Per workspace item (``Workspace.items`` rows), the number of its image."""
    number = {item_id: i for i, item_id in enumerate(items.loc[items["kind"] == "image", "id"])}
    owner_id = items["image_id"].where(items["kind"] == "text", items["id"])
    return np.array([number[i] for i in owner_id])


# --------------------------------------------------------------------------- steps


def timed(step: Callable[[], Any]) -> tuple[Any, float]:
    """``step()`` and its wall seconds."""
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start


def build_workspace(ws_path: Path, images_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write the PNGs, add the dataset and store the vectors; timings and handles."""
    from modalchorus.encoders import create_encoder
    from modalchorus.store import Workspace

    encoder_id = create_encoder("pocket", device="cpu").id
    paths, png_s = timed(lambda: write_pngs(images_dir, args.images))
    dataset = build_dataset(paths, args.captions_per_image)
    ws = Workspace.create(ws_path)
    added, add_s = timed(lambda: ws.add_dataset(dataset))
    items = ws.items(dataset=DATASET)
    is_image = (items["kind"] == "image").to_numpy()
    vectors, cluster = synthetic_vectors(is_image, image_numbers(items))
    _, put_s = timed(
        lambda: ws.put_embeddings(
            encoder_id, items["id"].tolist(), items["content_hash"].tolist(), vectors
        )
    )
    return {
        "ws": ws,
        "encoder_id": encoder_id,
        "items": items,
        "cluster": cluster,
        "figures": {
            "n_images": added.n_images,
            "n_texts": added.n_texts,
            "write_pngs_s": round(png_s, 2),
            "add_dataset_s": round(add_s, 2),
            "put_embeddings_s": round(put_s, 2),
            "peak_rss_mib": round(peak_rss_mib()),
        },
    }


def project(ws, encoder_id: str) -> dict[str, Any]:
    """Time ``project_dataset`` (MFM): fit seconds and the rest."""
    from modalchorus.projecting import METRIC_MAX_POINTS, project_dataset

    info, total = timed(lambda: project_dataset(ws, DATASET, encoder_id, "mfm"))
    fit = float(info.metrics["fit_seconds"])
    return {
        "total_s": round(total, 2),
        "fit_s": round(fit, 2),
        "rest_s": round(total - fit, 2),
        "metric_max_points": METRIC_MAX_POINTS,
        "n_scored": int(info.metrics["n_image_scored"] + info.metrics["n_text_scored"]),
        "inter_T@10": round(float(info.metrics["inter_T@10"]), 4),
        "inter_C@10": round(float(info.metrics["inter_C@10"]), 4),
        "peak_rss_mib": round(peak_rss_mib()),
    }


#: Progress fractions at which ``run_alignment`` starts its later phases.
ALIGN_PHASES = (
    (0.82, "read_tune_reembed_s"),
    (0.92, "place_and_score_layout_s"),
    (0.97, "task_metrics_before_after_s"),
)


def align(ws, encoder_id: str, items, cluster: np.ndarray) -> dict[str, Any]:
    """Time one adapter run: image 0 -> a few captions of an image of another cluster."""
    from modalchorus.align import PointSet, run_alignment

    images = items.loc[items["kind"] == "image", "id"].tolist()
    other = int(np.flatnonzero(cluster != cluster[0])[0])
    captions = items.loc[items["image_id"] == images[other], "id"].tolist()
    intent = PointSet(images[0], target=captions[:N_TARGET_CAPTIONS])
    marks: list[tuple[float, float]] = []

    def progress(fraction: float, _message: str) -> None:
        marks.append((fraction, time.perf_counter()))

    start = time.perf_counter()
    run = run_alignment(ws, [intent], encoder_id=encoder_id, scope="adapter", progress=progress)
    end = time.perf_counter()
    edges = [start]
    for threshold, _ in ALIGN_PHASES:
        edges.append(next((t for f, t in marks if f >= threshold), edges[-1]))
    edges.append(end)
    phases = {
        name: round(b - a, 2)
        for (_, name), a, b in zip(ALIGN_PHASES, edges, edges[1:], strict=False)
    }
    phases["store_s"] = round(end - edges[-2], 2)
    before, after = run.metrics_before[DATASET], run.metrics_after[DATASET]
    return {
        "total_s": round(end - start, 2),
        "recorded_s": round(run.seconds, 2),
        **phases,
        "n_items": len(items),
        "t2i_R@5_before": round(float(before["t2i_R@5"]), 4),
        "t2i_R@5_after": round(float(after["t2i_R@5"]), 4),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def metrics(ws, encoder_id: str) -> dict[str, Any]:
    """Time reading the stored base embeddings, then ``task_metrics`` on them."""
    from modalchorus.evaluation import task_metrics

    (ids, vectors), read_s = timed(lambda: ws.get_embeddings(encoder_id))
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    report, metrics_s = timed(
        lambda: task_metrics(ws, DATASET, lambda wanted: vectors[[row_of[i] for i in wanted]])
    )
    return {
        "read_embeddings_s": round(read_s, 2),
        "task_metrics_s": round(metrics_s, 2),
        **{k: round(float(v), 4) for k, v in report.items() if "R@" in k},
        "peak_rss_mib": round(peak_rss_mib()),
    }


# --------------------------------------------------------------------------- report


def machine_with_ram() -> dict[str, Any]:
    """:func:`bench_projection.machine` plus the RAM."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {**machine(), "ram_gib": round(ram, 1)}


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    b, p, a, m = (result[k] for k in ("build", "project", "align", "task_metrics"))
    rows = [
        ("items", f"{b['n_images']:,} images + {b['n_texts']:,} captions"),
        ("write PNGs (set-up, not a workspace step)", f"{b['write_pngs_s']:.1f} s"),
        ("add_dataset", f"{b['add_dataset_s']:.1f} s"),
        ("put_embeddings", f"{b['put_embeddings_s']:.1f} s"),
        ("project_dataset mfm: total", f"{p['total_s']:.1f} s"),
        ("  MFM fit", f"{p['fit_s']:.1f} s"),
        (f"  rest (read, score on {p['n_scored']:,} points, store)", f"{p['rest_s']:.1f} s"),
        ("adapter alignment run: total", f"{a['total_s']:.1f} s"),
        ("  read + tune + re-embed", f"{a['read_tune_reembed_s']:.1f} s"),
        ("  place in the same frame + score layout", f"{a['place_and_score_layout_s']:.1f} s"),
        ("  task metrics before and after", f"{a['task_metrics_before_after_s']:.1f} s"),
        ("  store", f"{a['store_s']:.1f} s"),
        ("read all embeddings", f"{m['read_embeddings_s']:.1f} s"),
        ("task_metrics (retrieval)", f"{m['task_metrics_s']:.1f} s"),
        (
            "  Recall@1/5/10 t2i; i2t",
            f"{m['t2i_R@1']:.3f} / {m['t2i_R@5']:.3f} / {m['t2i_R@10']:.3f}; "
            f"{m['i2t_R@1']:.3f} / {m['i2t_R@5']:.3f} / {m['i2t_R@10']:.3f}",
        ),
        ("peak RSS", f"{result['peak_rss_mib']:,} MiB"),
    ]
    return "\n".join(["| step | figure |", "|---|---|"] + [f"| {s} | {f} |" for s, f in rows])


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """All steps with the workspace at ``root / "workspace"`` or ``args.workspace``."""
    if args.workspace is not None:
        ws_path = args.workspace
        images_dir = ws_path.parent / f"{ws_path.name}-images" / "images"
    else:
        ws_path, images_dir = root / "workspace", root / "images"
    built = build_workspace(ws_path, images_dir, args)
    ws, encoder_id = built["ws"], built["encoder_id"]
    result = {"build": built["figures"], "project": project(ws, encoder_id)}
    result["align"] = align(ws, encoder_id, built["items"], built["cluster"])
    result["task_metrics"] = metrics(ws, encoder_id)
    result["peak_rss_mib"] = round(peak_rss_mib())
    result["workspace"] = str(ws_path) if args.workspace is not None else None
    ws.close()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--captions-per-image", type=int, default=10)
    parser.add_argument(
        "--workspace",
        type=Path,
        help="create the workspace here and keep it (PNGs in <DIR>-images/); default: a "
        "temporary folder, removed afterwards",
    )
    parser.add_argument("--output", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python "
        + " ".join(
            [
                Path(__file__).resolve().relative_to(ROOT).as_posix(),
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "machine": machine_with_ram(),
        "images": args.images,
        "captions_per_image": args.captions_per_image,
    }
    with tempfile.TemporaryDirectory(prefix="modalchorus-scale-") as tmp:
        result = {**meta, **run(args, Path(tmp))}
    print(table(result))
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
