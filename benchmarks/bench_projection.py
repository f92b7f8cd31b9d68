"""Projection quality and speed: the Modal Fusion Map against the baselines.

Runs every method (mfm, tsne, umap, mds, dcm, pca) on the same real embeddings (``pocket``
encoder by default):

* **flickr8k-1k**: 1,000 Flickr8k photos + their 5,000 captions;
* **cifar10-2k**: the first 2,000 CIFAR-10 test images + the 10 class names under 8 prompt
  templates (80 texts; they are the concepts of the cross-modal agreement);
* **coco-mini**: the 159 COCO photos (one per category) + their 795 captions, the data the
  published MFM figures come from (there: all of COCO, with CLIP).

and reports inter-modal T/C at k = 5, 10, 20, intra-modal T/C, cross-modal agreement and fit
seconds; the MFM's ``transform`` throughput on 1M random unit vectors; and the peak RSS of an
MFM fit on 100,000 synthetic 384-d points (sampled to ``max_fit_points``) plus the transform of
all of them, measured in a subprocess with ``resource.getrusage``.

Embeddings are cached in ``.cache/emb/<dataset>__<encoder id>.npz``. Results go to
``benchmarks/results/projection.json`` (``--ablation``: ``projection_ablation.json``, the MFM
variants behind its defaults) and a Markdown table is printed.

Usage::

    .venv/bin/python benchmarks/bench_projection.py                 # full benchmark
    .venv/bin/python benchmarks/bench_projection.py --ablation      # MFM variants only
    .venv/bin/python benchmarks/bench_projection.py --datasets cifar10-2k --methods mfm pca
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "emb"
RESULTS = ROOT / "benchmarks" / "results"
DATA_DIR = Path(os.environ.get("MODALCHORUS_DATA_DIR", ROOT.parent / "shared" / "datasets"))

#: Prompt templates of the CIFAR-10 texts (8 per class, so k = 20 stays defined for 80 texts).
CIFAR_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a pixelated photo of a {}.",
)
DATASETS = ("flickr8k-1k", "cifar10-2k", "coco-mini")
KS = (5, 10, 20)

#: One-factor-at-a-time MFM variants of ``--ablation`` (the empty one is the default).
ABLATION: dict[str, dict[str, Any]] = {
    "default": {},
    "normalisation=minmax": {"normalisation": "minmax"},
    "normalisation=quantile": {"normalisation": "quantile"},
    "nonmetric=triplet": {"nonmetric": "triplet"},
    "nonmetric_weight=0.3": {"nonmetric_weight": 0.3},
    "intra_weight=0": {"intra_weight": 0.0},
    "metric_weight=0": {"metric_weight": 0.0},
    "metric_weight=1": {"metric_weight": 1.0},
    "precision_weight=0": {"precision_weight": 0.0},
    "precision_weight=0.2": {"precision_weight": 0.2},
    "cross_dof=1": {"cross_dof": 1.0},
    "cross_dof=2": {"cross_dof": 2.0},
    "cross_dof=5": {"cross_dof": 5.0},
    "lr_schedule=constant": {"lr_schedule": "constant"},
    "anchor_sampling=balanced": {"anchor_sampling": "balanced"},
    "batch_size=384": {"batch_size": 384},
    "hidden=(256,256)": {"hidden": (256, 256)},
    "init=random": {"init": "random"},
    "max_iter=1000": {"max_iter": 1000},
    "refine_iter=0": {"refine_iter": 0},
    "refine_learning_rate=0.02": {"refine_learning_rate": 0.02},
    "refine_intra_trust_weight=0.1": {"refine_intra_trust_weight": 0.1},
}

logger = logging.getLogger("bench_projection")


# ----------------------------------------------------------------------------- data


def _tag(encoder_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_id)


def load_embeddings(dataset: str, encoder_name: str = "pocket") -> dict[str, Any]:
    """Embeddings of a benchmark dataset, from the cache or freshly encoded (then cached).

    Returns
    -------
    dict
        ``X_image``, ``X_text``, ``concepts`` (text rows for the agreement, or None),
        ``encoder`` (its id), ``cache`` (path).
    """
    from modalchorus.encoders import create_encoder

    encoder = create_encoder(encoder_name)
    path = CACHE / f"{dataset}__{_tag(encoder.id)}.npz"
    if not path.is_file():
        from modalchorus.data import load_dataset
        from modalchorus.tasks import class_prompts

        start = time.perf_counter()
        if dataset in ("flickr8k-1k", "coco-mini"):
            ds = load_dataset(dataset.removesuffix("-1k"), data_dir=DATA_DIR)
            texts = [c for r in ds.images for c in r.captions]
        elif dataset == "cifar10-2k":
            ds = load_dataset("cifar10", data_dir=DATA_DIR, limit=2000)
            texts = class_prompts(ds.classes, CIFAR_TEMPLATES)
        else:
            raise ValueError(f"unknown dataset {dataset!r}: use one of {DATASETS}")
        X_image = encoder.encode_images([r.load() for r in ds.images], progress=True)
        X_text = encoder.encode_texts(texts)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, X_image=X_image, X_text=X_text)
        logger.info("encoded %s in %.0f s -> %s", dataset, time.perf_counter() - start, path)
    with np.load(path, allow_pickle=False) as f:
        X_image, X_text = f["X_image"], f["X_text"]
    # Captions: agreement over all captions; CIFAR: every text is a class prompt.
    return {
        "X_image": X_image,
        "X_text": X_text,
        "concepts": None,
        "encoder": encoder.id,
        "cache": str(path.relative_to(ROOT)),
    }


def structured_unit_vectors(
    n: int, d: int = 384, n_clusters: int = 50, seed: int = 0, gap: float = 0.8
) -> np.ndarray:
    """``n`` clustered unit vectors in ``d`` dimensions, shifted by ``gap`` along one axis."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)).astype(np.float32)
    X = centres[rng.integers(n_clusters, size=n)]
    X += 0.6 * rng.normal(size=(n, d)).astype(np.float32)
    X[:, 0] += gap * np.sqrt(d)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


# --------------------------------------------------------------------------- runs


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("Y_image", "Y_text")}
    out["params"] = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in out.get("params", {}).items()
    }
    return json.loads(json.dumps(out, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def run_quality(datasets: list[str], methods: list[str], encoder: str) -> dict[str, Any]:
    from modalchorus.projection.evaluate import compare_methods, format_table

    out: dict[str, Any] = {}
    for name in datasets:
        emb = load_embeddings(name, encoder)
        logger.info(
            "%s: %d images, %d texts", name, *(emb[k].shape[0] for k in ("X_image", "X_text"))
        )
        rows = compare_methods(
            emb["X_image"],
            emb["X_text"],
            methods=methods,
            ks=KS,
            concepts=emb["concepts"],
            random_state=0,
            throughput_points=0,
        )
        out[name] = {
            "n_image": int(emb["X_image"].shape[0]),
            "n_text": int(emb["X_text"].shape[0]),
            "encoder": emb["encoder"],
            "rows": [_clean(r) for r in rows],
        }
        print(
            f"\n### {name} ({emb['X_image'].shape[0]:,} images + "
            f"{emb['X_text'].shape[0]:,} texts, encoder {emb['encoder']})\n"
        )
        print(format_table(rows, KS))
    return out


def run_ablation(datasets: list[str], encoder: str) -> dict[str, Any]:
    from modalchorus.projection.evaluate import compare_methods

    out: dict[str, Any] = {}
    for name in datasets:
        emb = load_embeddings(name, encoder)
        rows = []
        for label, params in ABLATION.items():
            row = compare_methods(
                emb["X_image"],
                emb["X_text"],
                methods=("mfm",),
                ks=(10,),
                concepts=emb["concepts"],
                method_params={"mfm": params},
                throughput_points=0,
            )[0]
            row = _clean(row)
            row["variant"] = label
            rows.append(row)
            print(
                f"{name:12s} {label:24s} inter T {row['inter_T@10']:.4f} C "
                f"{row['inter_C@10']:.4f} | T img {row['T_image@10']:.4f} T txt "
                f"{row['T_text@10']:.4f} | fit {row['fit_seconds']:.1f} s",
                flush=True,
            )
        out[name] = rows
    print("\n" + ablation_table(out))
    return out


def ablation_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown table of ``--ablation`` results (k = 10)."""
    names = list(results)
    head = (
        "| variant | "
        + " | ".join(
            f"{n} inter T | {n} inter C | {n} T img | {n} T txt | {n} fit s" for n in names
        )
        + " |"
    )
    lines = [head, "|" + "---|" * (1 + 5 * len(names))]
    variants = [r["variant"] for r in results[names[0]]]
    for i, v in enumerate(variants):
        cells = [v]
        for n in names:
            r = results[n][i]
            cells += [
                f"{r['inter_T@10']:.3f}",
                f"{r['inter_C@10']:.3f}",
                f"{r['T_image@10']:.3f}",
                f"{r['T_text@10']:.3f}",
                f"{r['fit_seconds']:.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_throughput(n_points: int, encoder: str) -> dict[str, Any]:
    """MFM transform points/s on ``n_points`` random unit vectors (fitted on Flickr)."""
    from modalchorus.projection.mfm import ModalFusionMap

    emb = load_embeddings("flickr8k-1k", encoder)
    model = ModalFusionMap(random_state=0).fit(emb["X_image"], emb["X_text"])
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_points, emb["X_image"].shape[1])).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    model.transform(X[:100_000], "image")  # warm-up
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        model.transform(X, "image")
        best = min(best, time.perf_counter() - start)
    rate = n_points / best
    print(f"\nMFM transform: {n_points:,} points in {best:.2f} s = {rate:,.0f} points/s")
    return {"n_points": n_points, "seconds": best, "points_per_s": rate}


def rss_child(n_points: int) -> None:
    """Subprocess body: fit the MFM on ``n_points`` synthetic points, print JSON."""
    import resource

    from modalchorus.projection.mfm import ModalFusionMap

    X = structured_unit_vectors(n_points)
    n_image = n_points // 2
    start = time.perf_counter()
    model = ModalFusionMap(random_state=0).fit(X[:n_image], X[n_image:])
    seconds = time.perf_counter() - start
    # ru_maxrss (KiB on Linux) is inherited through fork + exec from the parent's peak, so
    # the benchmark measures first, while its own process is still small; VmHWM (peak RSS
    # of this process image only) is reported too.
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_kib = None
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm_kib = int(line.split()[1])
    print(
        json.dumps(
            {
                "n_points": n_points,
                "n_fit_points": int(sum(v.size for v in model.fit_indices_.values())),
                "fit_seconds": seconds,
                "peak_rss_mib": rss_kib / 1024,
                "vm_hwm_mib": None if hwm_kib is None else hwm_kib / 1024,
            }
        )
    )


def run_rss(n_points: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(n_points)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\nMFM fit on {n_points:,} points ({result['n_fit_points']:,} sampled) + transform "
        f"of all: {result['fit_seconds']:.1f} s, peak RSS {result['peak_rss_mib']:,.0f} MiB "
        f"(getrusage), {result['vm_hwm_mib'] or float('nan'):,.0f} MiB (VmHWM)"
    )
    return result


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in lscpu.splitlines()
                if ln.startswith("Model name")
            ),
            model,
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--methods", nargs="+", default=["mfm", "tsne", "umap", "mds", "dcm", "pca"]
    )
    parser.add_argument("--encoder", default="pocket")
    parser.add_argument("--ablation", action="store_true", help="MFM variants only")
    parser.add_argument("--throughput-points", type=int, default=1_000_000)
    parser.add_argument("--rss-points", type=int, default=100_000)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python "
        + " ".join(
            [
                Path(__file__).relative_to(ROOT).as_posix(),
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "machine": machine(),
    }
    if args.ablation:
        result = {**meta, "ablation": run_ablation(args.datasets, args.encoder)}
        path = args.output or RESULTS / "projection_ablation.json"
    else:
        result: dict[str, Any] = dict(meta)
        if "mfm" in args.methods and args.rss_points > 0:
            result["memory"] = run_rss(args.rss_points)  # first: see rss_child
        result["quality"] = run_quality(args.datasets, args.methods, args.encoder)
        if "mfm" in args.methods and args.throughput_points > 0:
            result["transform"] = run_throughput(args.throughput_points, args.encoder)
        path = args.output or RESULTS / "projection.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
