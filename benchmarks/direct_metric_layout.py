"""Does a 2-D layout meeting the projection targets exist? Optimise the metrics themselves.

The MFM and its exact objective (``mfm_exact_objective.py``) stop on one trustworthiness /
continuity front. This probe starts from the fitted MFM layout (defaults, seed 0) and moves
free 2-D points to improve smoothed versions of the k = 10 metrics directly, with exact ranks:

* continuity of a relation A -> B (image -> text, text -> image, and optionally image ->
  image, text -> text): for each anchor ``a`` and each of its high-D k nearest ``j`` in B,
  ``relu(s(a, j) - k)``, where ``s`` is the soft 2-D rank of ``j`` among B,
  ``0.5 + sum_l sigmoid((d(a, j) - d(a, l)) / tau_a)`` (``tau_a`` = ``tau`` x the distance
  to the anchor's k-th 2-D neighbour);
* trustworthiness: for each of the anchor's current 2-D k nearest ``j``,
  ``relu(r(a, j) - k) * relu(k + 1 - s(a, j))`` with ``r`` the exact high-D rank: a false
  neighbour is pushed out in proportion to how wrong it is.

Both carry the Venna-Kaski normalisation: the first is a smooth "1 - C"; the second weighs
an intruder by how deep inside the anchor's k nearest it sits as well as by its rank excess.
It is a measurement, not a method: it needs every pairwise rank (``O((N + M)^2)`` memory) and
places no new point. (``modalchorus.projection.rank_refinement`` is the library's windowed,
stochastic form of this loss, which ``ModalFusionMap(refine_iter=...)`` trains the network
on; this exact form is kept so the recorded figures stay reproducible.) The figures go to
``benchmarks/results/direct_metric_layout.jsonl`` and ``benchmarks/RESULTS.md`` ("Where MFM
falls short").

Usage::

    .venv/bin/python benchmarks/direct_metric_layout.py --dataset flickr8k-1k --trust-weight 0.05
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from bench_projection import DATASETS, RESULTS, load_embeddings

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projection.mfm import ModalFusionMap

K = 10
REPORTED = ("inter_T@10", "inter_C@10", "T_image@10", "T_text@10")


def high_ranks(A: np.ndarray, B: np.ndarray, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact high-D ranks ``r(a, j)`` (nearest = 1) of every B for every A, and the k-NN.

    Returns ranks, shape (|A|, |B|) int32, and the k nearest, shape (|A|, k) int64.
    """
    D = 1.0 - A @ B.T
    if same:
        np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")
    ranks = np.empty(D.shape, dtype=np.int32)
    ranks[np.arange(D.shape[0])[:, None], order] = np.arange(1, D.shape[1] + 1, dtype=np.int32)
    return torch.as_tensor(ranks), torch.as_tensor(order[:, :K].copy())


def relation_loss(
    YA: torch.Tensor,
    YB: torch.Tensor,
    same: bool,
    ranks: torch.Tensor,
    knn: torch.Tensor,
    weights: tuple[float, float],
    tau: float,
    chunk: int,
) -> float:
    """Backpropagate one relation's ``w_C`` x missed + ``w_T`` x intruder loss; return it."""
    n_a = YA.shape[0]
    m = YB.shape[0] - int(same)
    norm = 2.0 / (n_a * K * (2 * m - 3 * K - 1))
    w_c, w_t = weights
    total = 0.0
    for start in range(0, n_a, chunk):
        d = torch.cdist(YA[start : start + chunk], YB)
        if same:
            rows = torch.arange(d.shape[0])
            d = d.index_put((rows, rows + start), torch.tensor(float("inf")))
        with torch.no_grad():
            nearest = torch.topk(d, K, largest=False)
            temp = tau * nearest.values[:, -1:].clamp_min(1e-6)
        cand = torch.cat([knn[start : start + chunk], nearest.indices], 1)
        d_cand = torch.gather(d, 1, cand)
        soft_rank = torch.sigmoid((d_cand[:, :, None] - d[:, None, :]) / temp[:, :, None])
        soft_rank = 0.5 + soft_rank.sum(-1)  # the self-comparison adds the other 0.5
        missed = torch.relu(soft_rank[:, :K] - K).sum()
        excess = torch.relu(torch.gather(ranks[start : start + chunk], 1, nearest.indices) - K)
        intruding = (excess.float() * torch.relu(K + 1 - soft_rank[:, K:])).sum()
        loss = norm * (w_c * missed + w_t * intruding)
        loss.backward()
        total += float(loss.detach())
    return total


def run(args: argparse.Namespace) -> dict:
    """Start from the MFM layout, optimise the smoothed metrics, return settings and figures."""
    emb = load_embeddings(args.dataset)
    XI, XT = (
        X / np.linalg.norm(X, axis=1, keepdims=True)
        for X in (emb["X_image"].astype(np.float32), emb["X_text"].astype(np.float32))
    )
    n = XI.shape[0]
    # The MFM defaults of 2026-11-29, when the recorded figures were taken.
    mfm = ModalFusionMap(random_state=0, max_iter=1000, refine_iter=0, n_threads=1).fit(XI, XT)
    Y0 = np.concatenate([mfm.embedding_image_, mfm.embedding_text_])

    def figures(Y: np.ndarray) -> dict[str, float]:
        report = projection_report(XI, XT, Y[:n], Y[n:], ks=(K,))
        return {key: round(float(report[key]), 4) for key in REPORTED}

    inter = (1.0, args.trust_weight)
    intra = (args.intra_weight, args.intra_weight * args.trust_weight)
    relations = [
        (slice(0, n), slice(n, None), False, *high_ranks(XI, XT, False), inter, 100),
        (slice(n, None), slice(0, n), False, *high_ranks(XT, XI, False), inter, 400),
    ]
    if args.intra_weight > 0:
        relations += [
            (slice(0, n), slice(0, n), True, *high_ranks(XI, XI, True), intra, 200),
            (slice(n, None), slice(n, None), True, *high_ranks(XT, XT, True), intra, 40),
        ]
    Y = torch.tensor(Y0, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([Y], lr=args.learning_rate * float(Y0.std()))
    start = time.perf_counter()
    for step in range(args.steps):
        opt.zero_grad()
        loss = sum(
            relation_loss(Y[a], Y[b], same, ranks, knn, w, args.tau, chunk)
            for a, b, same, ranks, knn, w, chunk in relations
        )
        opt.step()
        if step % 25 == 0:
            print(f"step {step}: loss {loss:.4f} ({time.perf_counter() - start:.0f} s)")
    return {
        "dataset": args.dataset,
        "steps": args.steps,
        "trust_weight": args.trust_weight,
        "intra_weight": args.intra_weight,
        "tau": args.tau,
        "learning_rate": args.learning_rate,
        "seconds": round(time.perf_counter() - start, 1),
        "mfm": figures(Y0),
        "direct": figures(Y.detach().numpy()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="flickr8k-1k", choices=DATASETS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--trust-weight",
        type=float,
        default=0.1,
        help="weight of the intruder (trustworthiness) loss against the missed-neighbour one",
    )
    parser.add_argument(
        "--intra-weight", type=float, default=0.3, help="weight of the intra-modal relations"
    )
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=0.03)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args)
    print(json.dumps(result))
    with (RESULTS / "direct_metric_layout.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
