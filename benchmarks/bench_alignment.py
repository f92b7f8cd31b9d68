"""Alignment efficacy: does a run fix what it targets without breaking the rest?

Two experiments, each run through ``modalchorus.align.run_alignment`` on a real workspace
embedded with the ``pocket`` encoder:

* **Zero-shot classification, CIFAR-10**, on each pool of test images ``first`` ..
  ``first + --images`` (``--first``: a comma list), with the class prompts: find the
  most-confused class pair, make point-set intents from 10 misclassified images per class of
  the pair (target: the true class's prompts, avoid: the other class's prompts), tune, and
  evaluate on the pool's held-out images (every image not named by an intent). Prediction
  is the tool's zero-shot classifier (:mod:`modalchorus.tasks.classification`). Scopes
  ``adapter`` and ``lora``, each from the base version. Which 20 images the intents name
  moves the result a lot, so the figures are per pool and their mean over pools.
* **Retrieval, Flickr8k 1k** (1,000 photos + 5,000 captions): for each topic word chosen
  up front, a set-set ``align`` intent between 5 captions containing the word (the first
  such caption of each of the first 5 photos that have one) and those 5 photos. Held-out
  text->image Recall@5, before and after, of (a) the other captions of those photos
  (paraphrases of the queries), (b) the captions containing the word on other photos
  (same topic), and (c) all captions.

    python benchmarks/bench_alignment.py [--images 2000] [--first 0,2000,5000,8000]
        [--scopes adapter,lora]

Writes ``benchmarks/results/alignment.json``; copy the figures into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalchorus.align import PointSet, SetSet, run_alignment, undo_alignment
from modalchorus.data import load_dataset
from modalchorus.embedding import embed_dataset
from modalchorus.encoders import create_encoder
from modalchorus.projecting import project_dataset, projection_name
from modalchorus.store import Workspace
from modalchorus.tasks.classification import class_embeddings, with_class_prompts

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
TOPICS = ("dog", "snow", "water", "bike", "beach")
N_PER_CLASS = 10
N_QUERIES = 5


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's machine type."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def workspace_for(name: str, dataset, encoder) -> Workspace:
    """A cached benchmark workspace holding ``dataset`` embedded, with an MFM layout."""
    ws = Workspace.open_or_create(CACHE / f"align-{name}")
    embed_dataset(ws, dataset, encoder)
    if projection_name("mfm", dataset.name, encoder.id) not in {p.name for p in ws.projections()}:
        project_dataset(ws, dataset.name, encoder.id, "mfm", ks=(10,))
    while undo_alignment(ws, encoder.id) is not None:  # start every run from the base
        pass
    return ws


def predictions(
    ws: Workspace, encoder_id: str, dataset: str
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Image ids, true and predicted class indices (the tool's zero-shot), classes."""
    classes = ws.dataset(dataset).classes
    images = ws.items(dataset=dataset, kind="image")
    texts = ws.items(dataset=dataset, kind="text")
    ids, x = ws.get_embeddings(encoder_id, images["id"].tolist())
    _, prompts = ws.get_embeddings(encoder_id, texts["id"].tolist())
    labels = texts["label"].to_numpy()
    centroids = class_embeddings(
        np.concatenate([prompts[labels == c] for c in classes]), len(classes)
    )
    truth = np.array([classes.index(c) for c in images["label"]])
    return ids, truth, np.argmax(x @ centroids.T, axis=1), classes


def held_out_accuracy(
    truth: np.ndarray, pred: np.ndarray, keep: np.ndarray, pair: tuple[int, int], n_classes: int
) -> dict[str, float]:
    """Pooled accuracy on the pair's classes and mean per-class accuracy on the others."""
    in_pair = keep & np.isin(truth, pair)
    others = [
        float((pred[keep & (truth == c)] == c).mean()) for c in range(n_classes) if c not in pair
    ]
    return {
        "targeted": float((pred[in_pair] == truth[in_pair]).mean()),
        "others_mean": float(np.mean(others)),
        "n_targeted": int(in_pair.sum()),
    }


def classification(args: argparse.Namespace, encoder, first: int) -> dict[str, Any]:
    """The CIFAR-10 experiment on test images ``first`` .. ``first + args.images``."""
    full = load_dataset("cifar10", data_dir=args.data_dir, limit=first + args.images)
    dataset = with_class_prompts(replace(full, images=full.images[first:]))
    ws = workspace_for(f"cifar10-{first}-{args.images}", dataset, encoder)
    ids, truth, pred, classes = predictions(ws, encoder.id, "cifar10")
    confusion = np.zeros((len(classes), len(classes)), int)
    np.add.at(confusion, (truth, pred), 1)
    mutual = confusion + confusion.T
    np.fill_diagonal(mutual, -1)
    a, b = np.unravel_index(np.argmax(mutual), mutual.shape)
    pair = (int(a), int(b))
    texts = ws.items(dataset="cifar10", kind="text")
    prompts = {c: texts[texts["label"] == classes[c]]["id"].tolist() for c in pair}
    chosen: list[str] = []
    intents = []
    for c, other in (pair, pair[::-1]):
        wrong = np.flatnonzero((truth == c) & (pred != c))
        # As a user would pick them: the ones the pair confuses first, then any other miss.
        ordered = sorted(wrong, key=lambda i: (pred[i] != other, i))[:N_PER_CLASS]
        for i in ordered:
            chosen.append(ids[i])
            intents.append(PointSet(ids[i], prompts[c], avoid=prompts[other]))
    keep = ~np.isin(np.array(ids), chosen)
    result: dict[str, Any] = {
        "images": args.images,
        "first": first,
        "pair": [classes[c] for c in pair],
        "confusion_pair": [int(confusion[a, b]), int(confusion[b, a])],
        "n_intents": len(intents),
        "before": held_out_accuracy(truth, pred, keep, pair, len(classes)),
        "runs": {},
    }
    for scope in args.scopes:
        start = time.perf_counter()
        run = run_alignment(
            ws,
            intents,
            encoder_id=encoder.id,
            scope=scope,
            params=args.params.get(scope),
            encoder=encoder if scope != "adapter" else None,
        )
        seconds = time.perf_counter() - start
        _, _, new_pred, _ = predictions(ws, run.encoder_id, "cifar10")
        after = held_out_accuracy(truth, new_pred, keep, pair, len(classes))
        result["runs"][scope] = {
            "seconds": round(seconds, 2),
            "tuning_steps": run.params["steps"],
            "after": after,
            "targeted_gain_points": round(
                100 * (after["targeted"] - result["before"]["targeted"]), 2
            ),
            "others_change_points": round(
                100 * (after["others_mean"] - result["before"]["others_mean"]), 2
            ),
            "intent_images_fixed": int(
                sum(new_pred[ids.index(i)] == truth[ids.index(i)] for i in chosen)
            ),
        }
        print(first, scope, json.dumps(result["runs"][scope]))
        undo_alignment(ws, encoder.id)
    return result


def pool_means(pools: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per scope: mean targeted gain, others change and seconds over the pools."""
    return {
        scope: {
            key: round(float(np.mean([p["runs"][scope][key] for p in pools])), 2)
            for key in ("targeted_gain_points", "others_change_points", "seconds")
        }
        for scope in pools[0]["runs"]
    }


def t2i_ranks_at5(image_x: np.ndarray, caption_x: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Per caption: whether its photo is among the 5 most similar photos."""
    return np.array(
        [owner[i] in np.argsort(-(image_x @ caption_x[i]))[:5] for i in range(len(caption_x))]
    )


def retrieval(args: argparse.Namespace, encoder) -> dict[str, Any]:
    full = load_dataset("flickr8k", data_dir=args.data_dir)
    dataset = replace(full, images=full.images[: args.flickr_images])
    ws = workspace_for(f"flickr8k-{args.flickr_images}", dataset, encoder)
    images = ws.items(dataset="flickr8k", kind="image")
    captions = ws.items(dataset="flickr8k", kind="text")
    row_of = {i: r for r, i in enumerate(images["id"])}
    owner = np.array([row_of[i] for i in captions["image_id"]])

    def recall(encoder_id: str) -> np.ndarray:
        _, x_img = ws.get_embeddings(encoder_id, images["id"].tolist())
        _, x_txt = ws.get_embeddings(encoder_id, captions["id"].tolist())
        return t2i_ranks_at5(x_img, x_txt, owner)

    base_hits = recall(encoder.id)
    out: dict[str, Any] = {"images": len(images), "captions": len(captions), "topics": {}}
    for topic in TOPICS:
        has = captions["text"].str.contains(rf"\b{topic}\b", flags=re.IGNORECASE, regex=True)
        first_caption: dict[int, int] = {}  # the first caption with the word, per photo
        for row in np.flatnonzero(has.to_numpy()):
            first_caption.setdefault(int(owner[row]), int(row))
        queries = np.array(list(first_caption.values())[:N_QUERIES])
        query_photos = set(owner[queries].tolist())
        not_query = ~np.isin(np.arange(len(owner)), queries)
        # Held out: the other captions of the same photos (paraphrases of the queries), and
        # the other captions containing the word (same topic, other photos).
        paraphrases = np.flatnonzero(np.isin(owner, list(query_photos)) & not_query)
        topic_rows = np.flatnonzero(has.to_numpy() & ~np.isin(owner, list(query_photos)))
        intent = SetSet(
            captions["id"].iloc[queries].tolist(),
            [images["id"].iloc[p] for p in sorted(query_photos)],
            "align",
        )
        start = time.perf_counter()
        run = run_alignment(ws, [intent], encoder_id=encoder.id)
        seconds = time.perf_counter() - start
        hits = recall(run.encoder_id)
        out["topics"][topic] = {
            "n_paraphrases": int(len(paraphrases)),
            "paraphrase_R@5_before": float(base_hits[paraphrases].mean()),
            "paraphrase_R@5_after": float(hits[paraphrases].mean()),
            "n_topic_queries": int(len(topic_rows)),
            "topic_R@5_before": float(base_hits[topic_rows].mean()),
            "topic_R@5_after": float(hits[topic_rows].mean()),
            "overall_R@5_before": float(base_hits.mean()),
            "overall_R@5_after": float(hits.mean()),
            "seconds": round(seconds, 2),
        }
        print(topic, json.dumps(out["topics"][topic]))
        undo_alignment(ws, encoder.id)
    topics = out["topics"].values()
    for key in ("paraphrase", "topic", "overall"):
        gains = [100 * (t[f"{key}_R@5_after"] - t[f"{key}_R@5_before"]) for t in topics]
        out[f"{key}_R@5_change_points_mean"] = round(float(np.mean(gains)), 2)
    out["overall_R@5_change_points_worst"] = round(
        min(100 * (t["overall_R@5_after"] - t["overall_R@5_before"]) for t in topics), 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--first", default="0,2000,5000,8000", help="comma list of pool starts")
    parser.add_argument("--flickr-images", type=int, default=1000)
    parser.add_argument("--scopes", default="adapter,lora")
    parser.add_argument("--skip", default="", help="comma list: classification, retrieval")
    parser.add_argument(
        "--params", default="{}", help="JSON {scope: {tuner param: value}} overriding defaults"
    )
    args = parser.parse_args()
    args.scopes = [s for s in args.scopes.split(",") if s]
    args.params = json.loads(args.params)
    skip = set(args.skip.split(","))
    encoder = create_encoder("pocket", device="cpu")
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{cpu_model()}, {torch.get_num_threads()} torch threads",
        "encoder": encoder.id,
    }
    if "classification" not in skip:
        pools = [classification(args, encoder, int(f)) for f in args.first.split(",")]
        result["classification"] = {"pools": pools, "mean_over_pools": pool_means(pools)}
    if "retrieval" not in skip:
        result["retrieval"] = retrieval(args, encoder)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "alignment.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
