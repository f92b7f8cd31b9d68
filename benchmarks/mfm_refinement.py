"""The MFM with and without its k-NN refinement phase (``refine_iter``), same embeddings.

Fits the MFM without refinement and the same MFM followed by ``--refine-iter`` refinement
steps (seed 0; the first phase is identical) on each dataset and reports k = 10 inter-modal
trustworthiness / continuity, intra-modal trustworthiness and fit seconds. Figures are
appended to ``benchmarks/results/mfm_refinement.jsonl`` and summarised in
``benchmarks/RESULTS.md`` ("Where MFM falls short"). The rows of 2026-11-29 were taken with
the defaults of the time (``max_iter=1000``, one thread, the slower refinement):
``--param max_iter=1000 --param n_threads=1`` repeats their first phase.

Usage::

    .venv/bin/python benchmarks/mfm_refinement.py                  # the defaults: 250 steps
    .venv/bin/python benchmarks/mfm_refinement.py --refine-iter 300 --param max_iter=1000
"""

from __future__ import annotations

import argparse
import json
import time

from bench_projection import DATASETS, RESULTS, load_embeddings

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projection.mfm import ModalFusionMap

REPORTED = ("inter_T@10", "inter_C@10", "T_image@10", "T_text@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--refine-iter", type=int, default=ModalFusionMap().refine_iter)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="another ModalFusionMap parameter for both fits, e.g. max_iter=1000",
    )
    args = parser.parse_args()
    extra = {name: json.loads(value) for name, value in (p.split("=", 1) for p in args.param)}
    for dataset in args.datasets:
        emb = load_embeddings(dataset)
        XI, XT = emb["X_image"], emb["X_text"]
        row: dict = {"dataset": dataset, "refine_iter": args.refine_iter, **extra}
        for name, params in (
            ("plain", {**extra, "refine_iter": 0}),
            ("refined", {**extra, "refine_iter": args.refine_iter}),
        ):
            start = time.perf_counter()
            mfm = ModalFusionMap(random_state=0, **params).fit(XI, XT)
            seconds = time.perf_counter() - start
            report = projection_report(XI, XT, mfm.embedding_image_, mfm.embedding_text_, ks=(10,))
            row[name] = {key: round(float(report[key]), 4) for key in REPORTED}
            row[name]["fit_s"] = round(seconds, 1)
        row["refine_params"] = {k: v for k, v in mfm.get_params().items() if k.startswith("refine")}
        print(json.dumps(row), flush=True)
        with (RESULTS / "mfm_refinement.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
