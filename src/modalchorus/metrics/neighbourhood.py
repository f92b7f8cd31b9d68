r"""Neighbourhood-preservation metrics for projections of one or two modalities.

All metrics compare a high-dimensional space (cosine distance by default) with a
low-dimensional layout (Euclidean distance).

Trustworthiness and continuity (Venna & Kaski, 2001/2006), for ``n`` points and ``k`` neighbours:

.. math::

    T(k) = 1 - \frac{2}{n k (2m - 3k - 1)} \sum_i \sum_{j \in U_k(i)} (r(i, j) - k)

    C(k) = 1 - \frac{2}{n k (2m - 3k - 1)} \sum_i \sum_{j \in V_k(i)} (\hat r(i, j) - k)

where ``U_k(i)`` are the low-D k nearest neighbours of ``i`` that are not among its high-D
k nearest neighbours, ``r(i, j)`` is the rank of ``j`` among the candidates ordered by high-D
distance from ``i`` (nearest = 1), ``V_k(i)`` / ``\hat r`` swap the two spaces, and ``m``
is the number of points ``n`` within one set (as in :func:`sklearn.manifold.trustworthiness`)
or ``|B|`` for the inter-modal variants, where the candidates of a point of modality A are the
points of modality B only.

Implementation notes
--------------------
* Equivalently ``sum_{j in N_k^low(i)} max(r(i, j) - k, 0)``: a low-D neighbour ranked
  ``<= k`` in high-D contributes nothing, so the high-D k-NN set itself is never needed.
* Ties: ``r(i, j) = 1 + #{l : d(i, l) < d(i, j)} + #{l != j : d(i, l) = d(i, j),
  d'(i, l) != d'(i, j)} / 2`` with ``d'`` the other space's distance. Points tied in both
  spaces (a grid mapped to itself) are not penalised; points a space cannot tell apart but
  the other can count half, the expected rank of a random tie-break, so a layout that
  collapses every point scores like a random one, not perfectly. Without ties this equals
  scikit-learn's value.
* Work is done per block of query rows (``chunk_size``, further capped so that one
  block of distances holds at most ``_MAX_BLOCK_ELEMENTS`` entries): memory is
  ``O(chunk_size * m)``, never ``O(n * m)``. High-D k-NN come from ``np.argpartition`` on
  each block, layout k-NN from an exact KD-tree; the ranks of the ``k`` neighbours are
  counted against their block row. Time ``O(n m (d + k))``; several ``k`` share one pass
  (:func:`projection_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from modalchorus.projection.validation import (
    as_matrix,
    check_enough_points,
    check_layout,
    check_modalities,
    check_nonzero_rows,
)

__all__ = [
    "continuity",
    "cross_modal_agreement",
    "intermodal_continuity",
    "intermodal_scores",
    "intermodal_trustworthiness",
    "nearest_concepts",
    "projection_report",
    "trustworthiness",
]

logger = logging.getLogger(__name__)

HighMetric = Literal["cosine", "euclidean"]

#: Default number of query rows per block.
DEFAULT_CHUNK_SIZE = 2048
#: Upper bound on the number of entries of one block of distances (64 MiB in float64).
_MAX_BLOCK_ELEMENTS = 1 << 23
#: Layouts with at most this many columns get exact per-coordinate distances.
_DIRECT_MAX_DIM = 8


# --------------------------------------------------------------------------- distances


@dataclass(frozen=True)
class _Space:
    """Points of one space prepared for blockwise distance computation.

    :meth:`distances` returns a distance that is *order-equivalent* to the metric (cosine
    distance, or squared Euclidean distance), which is all that ranks need. Layouts (at most
    ``_DIRECT_MAX_DIM`` columns) get exact per-coordinate squared differences; wider
    Euclidean inputs use ``|q|^2 + |c|^2 - 2 q.c``.
    """

    points: np.ndarray
    metric: str
    sqnorms: np.ndarray | None = None

    @classmethod
    def build(cls, X: np.ndarray, metric: str, name: str) -> _Space:
        if metric == "cosine":
            check_nonzero_rows(X, name)
            return cls(X / np.linalg.norm(X, axis=1, keepdims=True), "cosine")
        if metric == "euclidean":
            if X.shape[1] <= _DIRECT_MAX_DIM:
                return cls(X, "direct")
            return cls(X, "expand", np.einsum("ij,ij->i", X, X))
        raise ValueError(f"unknown metric {metric!r}: use 'cosine' or 'euclidean'")

    def distances(self, rows: slice | np.ndarray, other: _Space) -> np.ndarray:
        """Distances from ``self.points[rows]`` to every point of ``other``, shape (c, m)."""
        Q, C = self.points[rows], other.points
        if self.metric == "cosine":
            return 1.0 - Q @ C.T
        if self.metric == "direct":
            D = np.zeros((Q.shape[0], C.shape[0]))
            for col in range(Q.shape[1]):
                D += np.subtract.outer(Q[:, col], C[:, col]) ** 2
            return D
        assert self.sqnorms is not None and other.sqnorms is not None
        D = self.sqnorms[rows][:, None] + other.sqnorms[None, :] - 2.0 * (Q @ C.T)
        return np.maximum(D, 0.0, out=D)


def _block_rows(chunk_size: int, n_cols: int) -> int:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return max(1, min(chunk_size, _MAX_BLOCK_ELEMENTS // max(n_cols, 1)))


# ---------------------------------------------------------------------- rank penalties


def _layout_knn(low_q: np.ndarray, low_c: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
    """Exact k nearest candidates of every query in the layout (KD-tree), shape (n_q, k).

    With ``exclude_self`` the queries are the candidates and each query's own index is
    removed (or the farthest of ``k + 1`` when duplicates hide it).
    """
    tree = cKDTree(low_c)
    n_q = low_q.shape[0]
    if not exclude_self:
        return tree.query(low_q, k=k)[1].reshape(n_q, k)
    idx = tree.query(low_q, k=k + 1)[1].reshape(n_q, k + 1)
    drop = idx == np.arange(n_q)[:, None]
    drop[~drop.any(axis=1), -1] = True
    return idx[~drop].reshape(n_q, k)


def _high_knn(D: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries of each row of ``D``, nearest first, shape (c, k)."""
    part = np.argpartition(D, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(D, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _ranks(
    D: np.ndarray, other: np.ndarray, nbrs: np.ndarray, self_cols: np.ndarray | None
) -> np.ndarray:
    r"""Ranks of ``j = nbrs[i, :]`` by ``D`` with ties split by ``other`` (module notes).

    ``D`` and ``other`` (shape (c, m)) hold one block of rows in the two spaces;
    ``self_cols[i]`` is the column of query ``i`` itself if it is among the candidates.
    ``D`` is modified in place. Cost ``O(c * m * k)`` comparisons, memory ``O(c * m)``.

    Returns
    -------
    numpy.ndarray, shape (c, k), float64
        Whole or half ranks, nearest = 1.
    """
    if self_cols is not None:
        # The query's own entry always counts as nearer: it supplies the "1 +".
        D[np.arange(D.shape[0]), self_cols] = -np.inf
    targets = np.take_along_axis(D, nbrs, axis=1)
    other_targets = np.take_along_axis(other, nbrs, axis=1)
    ranks = np.empty(targets.shape, dtype=np.float64)
    for col in range(nbrs.shape[1]):
        t = targets[:, col, None]
        ranks[:, col] = np.less(D, t).sum(axis=1)
        tied = np.flatnonzero(np.equal(D, t).sum(axis=1) > 1)  # j itself always matches
        if tied.size:
            unresolved = np.equal(D[tied], t[tied]) & (
                other[tied] != other_targets[tied, col, None]
            )
            ranks[tied, col] += unresolved.sum(axis=1) / 2.0
    if self_cols is None:
        ranks += 1
    return ranks


def _excess(ranks: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """``sum_i sum_{c < k} max(ranks[i, c] - k, 0)`` for each k (columns nearest first)."""
    return np.array([np.maximum(ranks[:, :k] - k, 0).sum() for k in ks], dtype=np.float64)


def _rank_penalties(
    high_q: _Space,
    high_c: _Space,
    low_q: _Space,
    low_c: _Space,
    ks: Sequence[int],
    *,
    exclude_self: bool,
    chunk_size: int,
    trust: bool = True,
    cont: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Trustworthiness and continuity penalty sums for several k, in one blockwise pass.

    * trustworthiness: ``sum_i sum_{j in N_k^low(i)} max(r^high(i, j) - k, 0)``;
    * continuity: ``sum_i sum_{j in N_k^high(i)} max(r^low(i, j) - k, 0)``.

    ``N_k`` are the k nearest candidates (high-D: ``np.argpartition`` per block of rows;
    layout: exact KD-tree), ``r`` ranks among the candidates (ties: module notes). With
    ``exclude_self`` the queries are the candidates (same order) and a query is not its own
    candidate. The neighbour lists and ranks are computed once for ``max(ks)`` and shared
    by every k.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Penalty sums per k (zeros for a sum not requested), shape (len(ks),) each.
    """
    kmax = max(ks)
    n_q, n_c = high_q.points.shape[0], high_c.points.shape[0]
    knn_low = _layout_knn(low_q.points, low_c.points, kmax, exclude_self) if trust else None
    rows_per_block = _block_rows(chunk_size, n_c)
    pen_t = np.zeros(len(ks), dtype=np.float64)
    pen_c = np.zeros(len(ks), dtype=np.float64)
    for start in range(0, n_q, rows_per_block):
        rows = slice(start, min(start + rows_per_block, n_q))
        own = np.arange(rows.start, rows.stop) if exclude_self else None
        d_high = high_q.distances(rows, high_c)
        d_low = low_q.distances(rows, low_c)
        if cont:
            if own is not None:
                d_high[np.arange(own.size), own] = np.inf
            knn_high = _high_knn(d_high, kmax)
            pen_c += _excess(_ranks(d_low, d_high, knn_high, own), ks)
        if trust:
            assert knn_low is not None
            pen_t += _excess(_ranks(d_high, d_low, knn_low[rows], own), ks)
    return pen_t, pen_c


def _normalise(penalty: float, n: int, k: int, m: int) -> float:
    return 1.0 - 2.0 * float(penalty) / (n * k * (2.0 * m - 3.0 * k - 1.0))


def _scores(
    pen_t: np.ndarray, pen_c: np.ndarray, ks: Sequence[int], n: int, m: int, trust: bool, cont: bool
) -> dict[int, tuple[float, float]]:
    return {
        k: (
            _normalise(pen_t[i], n, k, m) if trust else np.nan,
            _normalise(pen_c[i], n, k, m) if cont else np.nan,
        )
        for i, k in enumerate(ks)
    }


# ----------------------------------------------------------------------- intra-modal


def _intra(
    X_high: ArrayLike,
    Y_low: ArrayLike,
    ks: Sequence[int],
    metric_high: str,
    chunk_size: int,
    *,
    trust: bool = True,
    cont: bool = True,
    names: tuple[str, str] = ("X_high", "Y_low"),
) -> dict[int, tuple[float, float]]:
    """``{k: (T, C)}`` within one set; a value not requested is NaN."""
    X = as_matrix(X_high, names[0])
    Y = check_layout(Y_low, X.shape[0], names[1])
    n = X.shape[0]
    for k in ks:
        check_enough_points(n, k, "points")
    high = _Space.build(X, metric_high, names[0])
    low = _Space.build(Y, "euclidean", names[1])
    pen_t, pen_c = _rank_penalties(
        high, high, low, low, ks, exclude_self=True, chunk_size=chunk_size, trust=trust, cont=cont
    )
    return _scores(pen_t, pen_c, ks, n, n, trust, cont)


def trustworthiness(
    X_high: ArrayLike,
    Y_low: ArrayLike,
    k: int,
    metric_high: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    r"""Trustworthiness ``T(k)`` of a layout within one set of points.

    ``T = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_k(i)} (r(i, j) - k)``, with
    ``U_k(i)`` the low-D k-NN of ``i`` missing from its high-D k-NN and ``r`` the high-D rank.
    Penalises points that look close in the layout but are far in the original space.
    With ``metric_high="euclidean"`` it equals :func:`sklearn.manifold.trustworthiness`.

    Parameters
    ----------
    X_high : array_like, shape (n, d)
        High-dimensional points.
    Y_low : array_like, shape (n, p)
        Layout (Euclidean), usually ``p = 2``.
    k : int
        Neighbourhood size; needs ``k < n`` and ``2n - 3k - 1 > 0``.
    metric_high : {"cosine", "euclidean"}
        Distance in the high-dimensional space.
    chunk_size : int
        Query rows per block (memory ``O(chunk_size * n)``).

    Returns
    -------
    float
        In ``[0, 1]``; 1 means every layout neighbour is a true neighbour.
    """
    return _intra(X_high, Y_low, [k], metric_high, chunk_size, cont=False)[k][0]


def continuity(
    X_high: ArrayLike,
    Y_low: ArrayLike,
    k: int,
    metric_high: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    r"""Continuity ``C(k)`` of a layout within one set of points.

    ``C = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in V_k(i)} (\hat r(i, j) - k)``, with
    ``V_k(i)`` the high-D k-NN of ``i`` missing from its low-D k-NN and ``\hat r`` the
    low-D rank. Penalises true neighbours that the layout tears apart.
    Parameters and return value as in :func:`trustworthiness`.
    """
    return _intra(X_high, Y_low, [k], metric_high, chunk_size, trust=False)[k][1]


# ----------------------------------------------------------------------- inter-modal


def _inter(
    XA: ArrayLike,
    XB: ArrayLike,
    YA: ArrayLike,
    YB: ArrayLike,
    ks: Sequence[int],
    metric_high: str,
    chunk_size: int,
    *,
    trust: bool = True,
    cont: bool = True,
    names: tuple[str, str] = ("XA", "XB"),
) -> dict[int, tuple[float, float]]:
    """``{k: (T, C)}`` from modality A to modality B; a value not requested is NaN."""
    A, B = check_modalities(XA, XB, names)
    LA = check_layout(YA, A.shape[0], "Y" + names[0][1:])
    LB = check_layout(YB, B.shape[0], "Y" + names[1][1:])
    if LA.shape[1] != LB.shape[1]:
        raise ValueError(
            f"layouts must have the same number of columns: {LA.shape[1]} and {LB.shape[1]}"
        )
    n, m = A.shape[0], B.shape[0]
    for k in ks:
        check_enough_points(m, k, f"{names[1]} points")
    hA, hB = _Space.build(A, metric_high, names[0]), _Space.build(B, metric_high, names[1])
    lA, lB = _Space.build(LA, "euclidean", "YA"), _Space.build(LB, "euclidean", "YB")
    pen_t, pen_c = _rank_penalties(
        hA, hB, lA, lB, ks, exclude_self=False, chunk_size=chunk_size, trust=trust, cont=cont
    )
    return _scores(pen_t, pen_c, ks, n, m, trust, cont)


def intermodal_trustworthiness(
    XA: ArrayLike,
    XB: ArrayLike,
    YA: ArrayLike,
    YB: ArrayLike,
    k: int,
    metric_high: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    r"""Inter-modal trustworthiness from modality A to modality B.

    For each point ``i`` of A, neighbours and ranks are taken among the points of B only:
    ``T_{A->B} = 1 - 2 / (n k (2m - 3k - 1)) * sum_{i in A} sum_{j in U_k(i)} (r(i, j) - k)``
    with ``n = |A|``, ``m = |B|``, ``U_k(i)`` the 2-D k-NN of ``i`` in B that are not among its
    high-D k-NN in B, and ``r(i, j)`` the high-D rank of ``j`` among B (nearest = 1).

    Note that with ``m`` candidates (rather than ``n - 1`` within one set) the worst case of
    the sum is ``n k (2m - 3k + 1) / 2``, so a pathological layout can score below 0: by
    ``2 / (2m - 3k - 1)``, negligible for hundreds of candidates but -2 at ``m = 4, k = 2``.
    The form is kept as specified (Venna–Kaski with the other modality's size as ``m``), so
    scores over a handful of candidates run lower than intra-modal ones.

    Parameters
    ----------
    XA : array_like, shape (n, d)
        High-dimensional points of modality A (queries).
    XB : array_like, shape (m, d)
        High-dimensional points of modality B (candidates).
    YA : array_like, shape (n, p)
        Layout of A.
    YB : array_like, shape (m, p)
        Layout of B.
    k : int
        Neighbourhood size; needs ``k < m`` and ``2m - 3k - 1 > 0``.
    metric_high : {"cosine", "euclidean"}
        High-dimensional distance; the layout distance is Euclidean.
    chunk_size : int
        Query rows per block (memory ``O(chunk_size * m)``).

    Returns
    -------
    float
    """
    return _inter(XA, XB, YA, YB, [k], metric_high, chunk_size, cont=False)[k][0]


def intermodal_continuity(
    XA: ArrayLike,
    XB: ArrayLike,
    YA: ArrayLike,
    YB: ArrayLike,
    k: int,
    metric_high: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    r"""Inter-modal continuity from modality A to modality B.

    ``C_{A->B} = 1 - 2 / (n k (2m - 3k - 1)) * sum_{i in A} sum_{j in V_k(i)} (\hat r(i, j) - k)``
    with ``V_k(i)`` the high-D k-NN of ``i`` in B missing from its 2-D k-NN in B and
    ``\hat r(i, j)`` the 2-D rank of ``j`` among B. Parameters as in
    :func:`intermodal_trustworthiness`.
    """
    return _inter(XA, XB, YA, YB, [k], metric_high, chunk_size, trust=False)[k][1]


def intermodal_scores(
    X_image: ArrayLike,
    X_text: ArrayLike,
    Y_image: ArrayLike,
    Y_text: ArrayLike,
    k: int,
    metric_high: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, float]:
    """Inter-modal trustworthiness and continuity in both directions, and their means.

    ``inter_T = (T_{image->text} + T_{text->image}) / 2`` (unweighted mean of the two
    directions), likewise ``inter_C``.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_text : array_like, shape (m, d)
    Y_image : array_like, shape (n, 2)
    Y_text : array_like, shape (m, 2)
    k : int
        Needs ``k < min(n, m)`` and ``2 min(n, m) - 3k - 1 > 0``.
    metric_high, chunk_size
        As in :func:`intermodal_trustworthiness`.

    Returns
    -------
    dict
        Keys ``inter_T``, ``inter_C``, ``inter_T_image_to_text``, ``inter_T_text_to_image``,
        ``inter_C_image_to_text``, ``inter_C_text_to_image``.
    """
    return _intermodal_many(X_image, X_text, Y_image, Y_text, [k], metric_high, chunk_size)[k]


def _intermodal_many(
    X_image: ArrayLike,
    X_text: ArrayLike,
    Y_image: ArrayLike,
    Y_text: ArrayLike,
    ks: Sequence[int],
    metric_high: str,
    chunk_size: int,
) -> dict[int, dict[str, float]]:
    """:func:`intermodal_scores` for several k sharing one pass per direction."""
    XI, XT = check_modalities(X_image, X_text)
    YI = check_layout(Y_image, XI.shape[0], "Y_image")
    YT = check_layout(Y_text, XT.shape[0], "Y_text")
    for k in ks:
        check_enough_points(XT.shape[0], k, "text points")
        check_enough_points(XI.shape[0], k, "image points")
    kw = {"metric_high": metric_high, "chunk_size": chunk_size}
    image_to_text = _inter(XI, XT, YI, YT, ks, names=("X_image", "X_text"), **kw)
    text_to_image = _inter(XT, XI, YT, YI, ks, names=("X_text", "X_image"), **kw)
    out = {}
    for k in ks:
        (t_it, c_it), (t_ti, c_ti) = image_to_text[k], text_to_image[k]
        out[k] = {
            "inter_T": 0.5 * (t_it + t_ti),
            "inter_C": 0.5 * (c_it + c_ti),
            "inter_T_image_to_text": t_it,
            "inter_T_text_to_image": t_ti,
            "inter_C_image_to_text": c_it,
            "inter_C_text_to_image": c_ti,
        }
    return out


INTERMODAL_KEYS = (
    "inter_T",
    "inter_C",
    "inter_T_image_to_text",
    "inter_T_text_to_image",
    "inter_C_image_to_text",
    "inter_C_text_to_image",
)


# -------------------------------------------------------------------------- agreement


def nearest_concepts(
    X_query: ArrayLike,
    X_concepts: ArrayLike,
    metric: HighMetric = "cosine",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Index of the nearest concept of every query point, computed blockwise.

    Parameters
    ----------
    X_query : array_like, shape (n, d)
    X_concepts : array_like, shape (c, d)
    metric : {"cosine", "euclidean"}
    chunk_size : int
        Query rows per block.

    Returns
    -------
    numpy.ndarray, shape (n,), intp
        ``argmin_c dist(x_i, x_c)``; ties go to the lowest concept index.
    """
    XQ, XC = check_modalities(X_query, X_concepts, ("X_query", "X_concepts"))
    q = _Space.build(XQ, metric, "X_query")
    c = _Space.build(XC, metric, "X_concepts")
    rows_per_block = _block_rows(chunk_size, XC.shape[0])
    out = np.empty(XQ.shape[0], dtype=np.intp)
    for start in range(0, XQ.shape[0], rows_per_block):
        rows = slice(start, min(start + rows_per_block, XQ.shape[0]))
        out[rows] = np.argmin(q.distances(rows, c), axis=1)
    return out


def cross_modal_agreement(
    X_image: ArrayLike,
    X_concepts: ArrayLike,
    Y_image: ArrayLike,
    Y_concepts: ArrayLike,
    *,
    metric_high: HighMetric = "cosine",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """Share of images whose nearest concept is the same in high-D and in the layout.

    ``agreement = (1/n) * #{i : argmin_c d_cos(x_i, x_c) == argmin_c ||y_i - y_c||}``.
    Reads as "does the map tell the same zero-shot story as the model?". Ties go to the
    lowest concept index in both spaces.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_concepts : array_like, shape (c, d)
        Concept (e.g. class-prompt) embeddings.
    Y_image : array_like, shape (n, p)
    Y_concepts : array_like, shape (c, p)
    metric_high : {"cosine", "euclidean"}
        High-dimensional distance (the layout's is Euclidean).
    chunk_size : int
        Query rows per block.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    XI, XC = check_modalities(X_image, X_concepts, ("X_image", "X_concepts"))
    YI = check_layout(Y_image, XI.shape[0], "Y_image")
    YC = check_layout(Y_concepts, XC.shape[0], "Y_concepts", n_components=YI.shape[1])
    high = nearest_concepts(XI, XC, metric_high, chunk_size=chunk_size)
    low = nearest_concepts(YI, YC, "euclidean", chunk_size=chunk_size)
    return float(np.mean(high == low))


# ----------------------------------------------------------------------------- report


def _feasible(
    ks: Sequence[int], sizes: Sequence[int], what: Sequence[str], label: str, skipped: list[str]
) -> list[int]:
    """The ks for which every candidate set is large enough; log and record the others."""
    ok = []
    for k in ks:
        try:
            for size, desc in zip(sizes, what, strict=True):
                check_enough_points(size, k, desc)
        except ValueError as exc:
            logger.warning("projection_report: skipping %s@%d: %s", label, k, exc)
            skipped.append(f"{label}@{k}: {exc}")
        else:
            ok.append(k)
    return ok


def projection_report(
    X_image: ArrayLike,
    X_text: ArrayLike,
    Y_image: ArrayLike,
    Y_text: ArrayLike,
    ks: Iterable[int] = (5, 10, 20),
    concepts: Sequence[int] | np.ndarray | None = None,
    *,
    max_points: int | None = None,
    metric_high: HighMetric = "cosine",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, float | int | list | None]:
    """All projection-quality metrics of a two-modality layout, as one flat dict.

    The metrics cost ``O((n + m)^2 d)``; ``max_points`` bounds it by scoring a fixed random
    sample (:func:`metric_sample`): an estimate, the same rows every time for the same
    sizes, so two layouts of the same points are compared on the same sample.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_text : array_like, shape (m, d)
    Y_image : array_like, shape (n, 2)
    Y_text : array_like, shape (m, 2)
    ks : int or iterable of int
        Neighbourhood sizes.
    concepts : sequence of int or bool mask over the texts, optional
        Which text rows are concepts for :func:`cross_modal_agreement` (e.g. the class
        prompts among captions). ``None``: all texts.
    max_points : int, optional
        Score at most this many points (images + texts); None scores all of them.
    metric_high, chunk_size
        As in :func:`trustworthiness`.

    Returns
    -------
    dict
        ``n_image``, ``n_text``, ``ks``; ``n_image_scored``, ``n_text_scored`` (the sample
        scored; the totals without ``max_points``); for each ``k``: ``T_image@k``, ``C_image@k``,
        ``T_text@k``, ``C_text@k`` (intra-modal), ``inter_T@k``, ``inter_C@k`` and the four
        directional ``inter_{T,C}_{image_to_text,text_to_image}@k``; ``agreement`` and
        ``n_concepts``, the number of concept texts it chose among (in the sample); and
        ``skipped``, a list of the metrics that could not be computed (too few points for
        ``k``), whose values are ``None``.
    """
    XI, XT = check_modalities(X_image, X_text)
    YI = check_layout(Y_image, XI.shape[0], "Y_image")
    YT = check_layout(Y_text, XT.shape[0], "Y_text", n_components=YI.shape[1])
    ks = list(dict.fromkeys(ks))  # unique, in the given order
    if isinstance(ks, int | np.integer):
        ks = [ks]  # one k; a bool is refused below
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"ks must be positive integers, got {k!r}")
    ks = [int(k) for k in ks]
    if concepts is None:
        idx = np.arange(XT.shape[0])
    else:
        sel = np.asarray(concepts)
        if sel.dtype != bool and sel.size and not np.issubdtype(sel.dtype, np.integer):
            raise ValueError(f"concepts must be integer indices or a bool mask, got {sel.dtype}")
        idx = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.intp).ravel()
        if sel.dtype == bool and sel.shape != (XT.shape[0],):
            raise ValueError(f"concepts mask must have shape ({XT.shape[0]},), got {sel.shape}")
        if idx.size == 0:
            raise ValueError("concepts selects no text rows")
        if idx.min() < -XT.shape[0] or idx.max() >= XT.shape[0]:
            raise ValueError(f"concepts indices out of range for {XT.shape[0]} texts")
    report: dict[str, float | int | list | None] = {
        "n_image": XI.shape[0],
        "n_text": XT.shape[0],
        "ks": ks,
    }
    image_rows, text_rows = metric_sample(XI.shape[0], XT.shape[0], max_points, idx)
    if image_rows.size < XI.shape[0] or text_rows.size < XT.shape[0]:
        idx = np.flatnonzero(np.isin(text_rows, idx % XT.shape[0]))  # concepts in the sample
        XI, YI, XT, YT = XI[image_rows], YI[image_rows], XT[text_rows], YT[text_rows]
    report["n_image_scored"], report["n_text_scored"] = XI.shape[0], XT.shape[0]
    skipped: list[str] = []
    kw = {"metric_high": metric_high, "chunk_size": chunk_size}
    intra: dict[str, dict[int, tuple[float, float]]] = {}
    for name, X, Y in (("image", XI, YI), ("text", XT, YT)):
        ok = _feasible(ks, [X.shape[0]], ["points"], f"{{T,C}}_{name}", skipped)
        intra[name] = _intra(X, Y, ok, names=(f"X_{name}", f"Y_{name}"), **kw) if ok else {}
    sizes, what = [XT.shape[0], XI.shape[0]], ["text points", "image points"]
    ok = _feasible(ks, sizes, what, "inter_*", skipped)
    inter = _intermodal_many(XI, XT, YI, YT, ok, **kw) if ok else {}
    for k in ks:
        for name in ("image", "text"):
            t, c = intra[name].get(k, (None, None))
            report[f"T_{name}@{k}"], report[f"C_{name}@{k}"] = t, c
        scores = inter.get(k, dict.fromkeys(INTERMODAL_KEYS))
        report.update({f"{key}@{k}": value for key, value in scores.items()})
    report["agreement"] = cross_modal_agreement(XI, XT[idx], YI, YT[idx], **kw)
    report["n_concepts"] = int(idx.size)
    report["skipped"] = skipped
    return report


def metric_sample(
    n_image: int, n_text: int, max_points: int | None, concepts: ArrayLike = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The rows :func:`projection_report` scores when it may score ``max_points`` at most.

    A modality that fits in half the budget is kept whole and the other gets the rest;
    otherwise each gets half. Concept texts are kept before other texts (so a few class
    prompts among many captions all stay). The draw is seeded: the same sizes give the
    same rows.

    Parameters
    ----------
    n_image, n_text : int
        Points of each modality.
    max_points : int or None
        Most points to score (at least 4); None keeps every row.
    concepts : array_like of int or bool
        Text rows to keep first: indices, or a mask of shape (n_text,).

    Returns
    -------
    image_rows : numpy.ndarray of int, shape (n_image_scored,), sorted
    text_rows : numpy.ndarray of int, shape (n_text_scored,), sorted
    """
    if max_points is not None and (
        isinstance(max_points, bool)
        or not isinstance(max_points, int | np.integer)
        or max_points < 4
    ):
        raise ValueError(f"max_points must be an integer >= 4 or None, got {max_points!r}")
    if max_points is None or n_image + n_text <= max_points:
        return np.arange(n_image), np.arange(n_text)
    half = int(max_points) // 2
    if min(n_image, n_text) <= half:
        n_img = n_image if n_image <= half else int(max_points) - n_text
        n_txt = n_text if n_text <= half else int(max_points) - n_image
    else:
        n_img = n_txt = half
    rng = np.random.default_rng(0)
    image_rows = np.sort(rng.permutation(n_image)[:n_img])
    sel = np.asarray(concepts)
    if sel.dtype == bool:  # a mask, as projection_report takes it
        if sel.shape != (n_text,):
            raise ValueError(f"concepts mask must have shape ({n_text},), got {sel.shape}")
        is_concept = sel.copy()
    else:
        idx = sel.astype(np.intp).ravel()
        if idx.size and (idx.min() < -n_text or idx.max() >= n_text):
            raise ValueError(f"concepts indices out of range for {n_text} texts")
        is_concept = np.zeros(n_text, dtype=bool)
        is_concept[idx] = True
    order = rng.permutation(n_text)
    order = order[np.argsort(~is_concept[order], kind="stable")]  # concepts first, shuffled
    text_rows = np.sort(order[:n_txt])
    return image_rows, text_rows
