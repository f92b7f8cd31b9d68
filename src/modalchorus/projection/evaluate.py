"""Side-by-side evaluation of joint projections (backs ``modalchorus evaluate``).

:func:`compare_methods` fits the Modal Fusion Map and the baselines of
:mod:`~modalchorus.projection.baselines` on the same embeddings, times each fit, scores each
layout with :func:`~modalchorus.metrics.neighbourhood.projection_report`, and measures the
MFM's out-of-sample ``transform`` throughput. :func:`format_table` renders the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projection.baselines import fit_project, list_methods
from modalchorus.projection.mfm import ModalFusionMap, neighbours_for
from modalchorus.projection.validation import check_modalities

__all__ = [
    "DEFAULT_METHODS",
    "compare_methods",
    "format_table",
    "measure_transform_throughput",
]

logger = logging.getLogger(__name__)

#: Methods compared by default: the MFM and every baseline.
DEFAULT_METHODS: tuple[str, ...] = ("mfm", "tsne", "umap", "mds", "dcm", "pca")


def measure_transform_throughput(
    model: ModalFusionMap,
    X: ArrayLike,
    n_points: int = 200_000,
    modality: str = "image",
    repeats: int = 1,
) -> float:
    """Points per second that ``model.transform`` places (best of ``repeats`` runs).

    Parameters
    ----------
    model : ModalFusionMap
        A fitted map.
    X : array_like, shape (n, d)
        Rows to tile up to ``n_points`` (e.g. the fitted images).
    n_points : int
        Size of the timed input.
    modality : {"image", "text"}
    repeats : int
        Timed runs; the fastest counts.

    Returns
    -------
    float
        ``n_points / seconds`` of one ``transform`` call (validation and L2 normalisation
        included; the tiling is not timed).
    """
    A = np.asarray(X, dtype=np.float32)
    reps = -(-int(n_points) // A.shape[0])
    big = np.tile(A, (reps, 1))[: int(n_points)]
    best = np.inf
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        model.transform(big, modality)
        best = min(best, time.perf_counter() - start)
    return float(big.shape[0] / best)


def compare_methods(
    X_image: ArrayLike,
    X_text: ArrayLike,
    methods: Sequence[str] = DEFAULT_METHODS,
    ks: Sequence[int] = (5, 10, 20),
    concepts: Sequence[int] | np.ndarray | None = None,
    random_state: int | None = 0,
    *,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    throughput_points: int = 200_000,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit each method on the same embeddings and score it.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_text : array_like, shape (m, d)
    methods : sequence of str
        ``"mfm"`` and/or any of :func:`~modalchorus.projection.baselines.list_methods`.
    ks : sequence of int
        Neighbourhood sizes of the report.
    concepts : sequence of int or bool mask, optional
        Text rows that are concepts for the cross-modal agreement (``None``: all texts).
    random_state : int or None
        Seed of every method.
    method_params : mapping, optional
        ``{method: {param: value}}`` passed to :class:`ModalFusionMap` or
        :func:`~modalchorus.projection.baselines.fit_project`.
    throughput_points : int
        Rows timed for the MFM's ``transform`` (0 skips the measurement).
    progress : callable, optional
        ``progress(fraction, message)`` before each method's fit and after the last score.

    Returns
    -------
    list of dict
        One row per method, in order: ``method``, ``fit_seconds``, ``params``, ``info``,
        ``transform_points_per_s`` (MFM only, else ``None``), the layouts ``Y_image`` and
        ``Y_text``, and every key of :func:`projection_report`.
    """
    XI, XT = check_modalities(X_image, X_text)
    known = ("mfm", *list_methods())
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}: use any of {list(known)}")
    if not methods:
        raise ValueError("methods is empty")
    method_params = dict(method_params or {})
    rows: list[dict[str, Any]] = []
    for done, method in enumerate(methods):
        params = dict(method_params.get(method, {}))
        logger.info("compare_methods: fitting %s", method)
        if progress is not None:
            progress(done / len(methods), f"fitting {method} ({done + 1}/{len(methods)})")
        throughput = None
        if method == "mfm":
            params.setdefault("n_neighbors", neighbours_for(len(XI), len(XT)))
            start = time.perf_counter()
            model = ModalFusionMap(random_state=random_state, **params).fit(XI, XT)
            fit_seconds = time.perf_counter() - start
            Y_image, Y_text = model.embedding_image_, model.embedding_text_
            used = {k: v for k, v in model.get_params().items() if k not in ("network", "callback")}
            info = {
                "n_iter": model.n_iter_,
                "best_step": model.best_step_,
                "n_fit_points": int(sum(v.size for v in model.fit_indices_.values())),
            }
            if throughput_points > 0:
                throughput = measure_transform_throughput(model, XI, throughput_points)
        else:
            result = fit_project(method, XI, XT, random_state=random_state, **params)
            fit_seconds, Y_image, Y_text = result.fit_seconds, result.Y_image, result.Y_text
            used, info = result.params, result.info
        report = projection_report(XI, XT, Y_image, Y_text, ks=ks, concepts=concepts)
        rows.append(
            {
                "method": method,
                "fit_seconds": float(fit_seconds),
                "transform_points_per_s": throughput,
                "params": used,
                "info": info,
                "Y_image": Y_image,
                "Y_text": Y_text,
                **report,
            }
        )
    if progress is not None:
        progress(1.0, "done")
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def format_table(
    rows: Sequence[Mapping[str, Any]], ks: Sequence[int] = (5, 10, 20), style: str = "markdown"
) -> str:
    """Render :func:`compare_methods` rows as a text table.

    Columns: method; inter-modal ``T``/``C`` at each ``k``; intra-modal ``T``/``C`` of
    images and texts at the middle ``k``; cross-modal agreement; fit seconds; MFM
    transform points/s. The best value of each quality column is marked with ``*``.

    Parameters
    ----------
    rows : sequence of mapping
    ks : sequence of int
    style : {"markdown", "plain"}
        A Markdown pipe table, or space-aligned columns.

    Returns
    -------
    str
    """
    if style not in ("markdown", "plain"):
        raise ValueError(f"unknown style {style!r}: use 'markdown' or 'plain'")
    ks = list(ks)
    k_mid = ks[len(ks) // 2] if ks else None
    cols: list[tuple[str, str, bool]] = []  # (header, key, higher-is-better quality column)
    for k in ks:
        cols += [(f"inter T@{k}", f"inter_T@{k}", True), (f"inter C@{k}", f"inter_C@{k}", True)]
    if k_mid is not None:
        cols += [
            (f"T img@{k_mid}", f"T_image@{k_mid}", True),
            (f"C img@{k_mid}", f"C_image@{k_mid}", True),
            (f"T txt@{k_mid}", f"T_text@{k_mid}", True),
            (f"C txt@{k_mid}", f"C_text@{k_mid}", True),
        ]
    cols += [
        ("agreement", "agreement", True),
        ("fit s", "fit_seconds", False),
        ("transform pts/s", "transform_points_per_s", False),
    ]
    best = {}
    for _, key, quality in cols:
        vals = [r.get(key) for r in rows if isinstance(r.get(key), float | int)]
        if quality and vals:
            best[key] = max(vals)
    header = ["method"] + [h for h, _, _ in cols]
    body = []
    for r in rows:
        line = [str(r.get("method", "?"))]
        for _, key, quality in cols:
            v = r.get(key)
            cell = _fmt(v, 2 if key == "fit_seconds" else 3)
            if quality and v is not None and key in best and v == best[key] and len(rows) > 1:
                cell += "*"
            line.append(cell)
        body.append(line)
    if style == "markdown":
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(out)
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    fmt_line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt_line.format(*line).rstrip() for line in [header, *body])
