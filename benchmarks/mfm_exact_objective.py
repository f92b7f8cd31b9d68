"""How far the MFM's objective itself goes: free 2-D coordinates under the exact loss.

The Modal Fusion Map trains a network on sampled batches. This script asks what its objective
gives with neither: one free 2-D point per item, and every anchor scored against *all*
candidates (dense, full-gradient Adam steps). The terms and constants are the MFM's own
(:mod:`modalchorus.projection.losses`, the fitted per-block normaliser, bandwidths calibrated
on each point's 15 nearest neighbours at perplexity 5): the cross-modal listwise KL both ways
with ``cross_dof`` and the reverse KL ``precision_weight``, plus the intra-modal listwise KL of
each modality. The metric term is left out (weight 0.3 in the MFM, within noise in the
ablation).

If this reaches no better inter-modal trustworthiness + continuity than the MFM, the
objective, not the sampling or the network, sets the limit (``benchmarks/RESULTS.md``, "Where
MFM falls short").

Memory and time grow with ``(N + M)^2``: Flickr8k 1k (6,000 points) takes ~1.1 s per step on
two cores and a few GB.

Usage::

    .venv/bin/python benchmarks/mfm_exact_objective.py --dataset flickr8k-1k --steps 500
    .venv/bin/python benchmarks/mfm_exact_objective.py --dataset cifar10-2k --cross-dof 8 \\
        --precision-weight 0
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from bench_projection import DATASETS, RESULTS, load_embeddings

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projection.distances import fit_block_normaliser
from modalchorus.projection.losses import listwise_kl_loss, pairwise_distances, row_targets
from modalchorus.projection.sampling import calibrate_bandwidths, sample_block_pairs

N_NEIGHBORS, PERPLEXITY = 15, 5.0


def _targets(D: torch.Tensor, same_modality: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row targets over every candidate, bandwidths calibrated on the 15 nearest."""
    mask = ~torch.eye(D.shape[0], dtype=torch.bool) if same_modality else None
    nearest = D if mask is None else D.masked_fill(~mask, float("inf"))
    d_knn = torch.topk(nearest, N_NEIGHBORS, largest=False).values.numpy()
    sigma = torch.as_tensor(calibrate_bandwidths(d_knn, PERPLEXITY), dtype=torch.float32)
    return row_targets(D, sigma, mask), mask


def run(dataset: str, steps: int, cross_dof: float, precision_weight: float, lr: float) -> dict:
    """Optimise free coordinates on one dataset; return the settings and the k=10 figures."""
    emb = load_embeddings(dataset)
    XI, XT = emb["X_image"].astype(np.float32), emb["X_text"].astype(np.float32)
    n = XI.shape[0]
    norm = fit_block_normaliser(
        sample_block_pairs(XI, XT, 200_000, np.random.default_rng(0)), "zscore"
    )

    def block(A: np.ndarray, B: np.ndarray, name: str) -> torch.Tensor:
        D = norm.transform(np.clip(1.0 - A @ B.T, 0.0, 2.0), name)
        return torch.as_tensor(D, dtype=torch.float32)

    D_it = block(XI, XT, "IT")
    p_it, _ = _targets(D_it, False)
    p_ti, _ = _targets(D_it.T.contiguous(), False)
    p_ii, m_ii = _targets(block(XI, XI, "II"), True)
    p_tt, m_tt = _targets(block(XT, XT, "TT"), True)
    del D_it

    # Start from the top two principal components of the modality-centred inputs (as the MFM).
    Z = np.concatenate([XI - XI.mean(0), XT - XT.mean(0)])
    _, _, Vt = np.linalg.svd(Z, full_matrices=False)
    Y0 = Z @ Vt[:2].T
    Y = torch.tensor(Y0 / Y0[:, 0].std(), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([Y], lr=lr)
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:  # linear decay to 0, as the MFM
            group["lr"] = lr * (1.0 - step / steps)
        YI, YT = Y[:n], Y[n:]
        D_sq = pairwise_distances(YI, YT, squared=True)
        cross = listwise_kl_loss(p_it, D_sq, dof=cross_dof, reverse=precision_weight)
        cross = cross + listwise_kl_loss(p_ti, D_sq.T, dof=cross_dof, reverse=precision_weight)
        intra = listwise_kl_loss(p_ii, pairwise_distances(YI, squared=True), m_ii)
        intra = intra + listwise_kl_loss(p_tt, pairwise_distances(YT, squared=True), m_tt)
        loss = 0.5 * (cross + intra)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)")
    Y_np = Y.detach().numpy()
    report = projection_report(XI, XT, Y_np[:n], Y_np[n:], ks=(10,))
    return {
        "dataset": dataset,
        "steps": steps,
        "cross_dof": cross_dof,
        "precision_weight": precision_weight,
        "learning_rate": lr,
        "seconds": round(time.perf_counter() - start, 1),
        **{
            key: round(float(report[key]), 4)
            for key in ("inter_T@10", "inter_C@10", "T_image@10", "T_text@10")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="flickr8k-1k", choices=DATASETS)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--cross-dof", type=float, default=3.0)
    parser.add_argument("--precision-weight", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(
        args.dataset, args.steps, args.cross_dof, args.precision_weight, args.learning_rate
    )
    print(json.dumps(result))
    out = RESULTS / "mfm_exact_objective.jsonl"
    with out.open("a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
