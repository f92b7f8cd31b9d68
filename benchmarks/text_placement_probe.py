"""How far can the texts alone raise text -> image continuity, with the images held fixed?

In a text -> image relation each text's trustworthiness and continuity depend only on its own
2-D position and on the images' positions, so with the images fixed every text can be placed
on its own. This probe fits the default MFM (seed 0), keeps its image layout, and moves each
text to the best of a set of candidate positions for

    missed + weight x intruding

(the exact k = 10 terms of that text: the 2-D rank excess of its high-D nearest images, and
the high-D rank excess of its current 2-D nearest images). The candidates are the text's
MFM position, the positions of its k nearest images in high-D, their mean and median,
points a quarter, half and three quarters of the way from the text to each of those images,
and 20 small random moves. It is a measurement, not a method: the figures show how much of
the continuity shortfall the image layout fixes before any text moves. The best of these
candidates is a lower bound on what an exact search would reach, not the optimum.

Figures are appended to ``benchmarks/results/text_placement_probe.jsonl``; see
``benchmarks/RESULTS.md`` ("Where MFM falls short").

Usage::

    .venv/bin/python benchmarks/text_placement_probe.py --dataset flickr8k-1k --weight 0 0.1 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from bench_projection import DATASETS, RESULTS, load_embeddings

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projection.mfm import ModalFusionMap

K = 10
REPORTED = (
    "inter_T@10",
    "inter_C@10",
    "inter_T_text_to_image@10",
    "inter_C_text_to_image@10",
    "inter_C_image_to_text@10",
    "T_text@10",
)


def candidates(y: np.ndarray, near: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Candidate positions, shape (c, 2), for a text at ``y`` whose high-D nearest images
    sit at ``near`` (shape (k, 2)); ``jitter`` (shape (j, 2)) are small offsets from ``y``."""
    toward = [a * near + (1 - a) * y for a in (0.25, 0.5, 0.75)]
    centres = [near.mean(0, keepdims=True), np.median(near, 0, keepdims=True)]
    return np.concatenate([y[None], near, *centres, *toward, y + jitter])


def penalties(
    P: np.ndarray, Y_image: np.ndarray, knn: np.ndarray, high_rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Missed and intruding rank excess of one text placed at each row of ``P`` (c, 2).

    ``knn`` (k,) are its high-D nearest images; ``high_rank`` (n,) the high-D rank of every
    image from it (nearest = 1). Returns two arrays of shape (c,).
    """
    d = ((P[:, None, :] - Y_image[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d, axis=1)
    low_rank = np.empty_like(order)
    np.put_along_axis(low_rank, order, np.arange(1, d.shape[1] + 1)[None, :], axis=1)
    missed = np.maximum(low_rank[:, knn] - K, 0).sum(1)
    intruding = np.maximum(high_rank[order[:, :K]] - K, 0).sum(1)
    return missed, intruding


def place_texts(
    XI: np.ndarray, XT: np.ndarray, YI: np.ndarray, YT: np.ndarray, weight: float, seed: int
) -> np.ndarray:
    """Each text moved to its best candidate (images fixed); returns the new (m, 2) layout."""
    rng = np.random.default_rng(seed)
    scale = 0.05 * float(YI.std())
    out = YT.copy()
    for t in range(XT.shape[0]):
        sim = XI @ XT[t]
        order = np.argsort(-sim, kind="stable")
        high_rank = np.empty_like(order)
        high_rank[order] = np.arange(1, order.size + 1)
        knn = order[:K]
        P = candidates(YT[t], YI[knn], rng.normal(scale=scale, size=(20, 2)))
        missed, intruding = penalties(P, YI, knn, high_rank)
        out[t] = P[np.argmin(missed + weight * intruding)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="flickr8k-1k", choices=DATASETS)
    parser.add_argument(
        "--weight", type=float, nargs="+", default=[0.0, 0.1, 1.0], help="intruder weights"
    )
    args = parser.parse_args()
    emb = load_embeddings(args.dataset)
    XI, XT = (
        X / np.linalg.norm(X, axis=1, keepdims=True)
        for X in (emb["X_image"].astype(np.float32), emb["X_text"].astype(np.float32))
    )
    mfm = ModalFusionMap(random_state=0).fit(XI, XT)
    YI, YT = mfm.embedding_image_, mfm.embedding_text_

    def figures(Y_text: np.ndarray) -> dict[str, float]:
        report = projection_report(XI, XT, YI, Y_text, ks=(K,))
        return {key: round(float(report[key]), 4) for key in REPORTED}

    result = {"dataset": args.dataset, "mfm": figures(YT)}
    for weight in args.weight:
        result[f"texts placed, weight {weight:g}"] = figures(
            place_texts(XI, XT, YI, YT, weight, seed=0)
        )
        print(json.dumps(result), flush=True)
    with (RESULTS / "text_placement_probe.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
