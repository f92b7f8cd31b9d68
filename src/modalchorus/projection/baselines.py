r"""Baseline joint projections of image and text embeddings into 2-D.

One entry point, :func:`fit_project`, runs any baseline on the *stacked, L2-normalised*
inputs ``[X_image; X_text]`` and splits the layout back into its two modalities:

* ``"tsne"``: openTSNE, cosine metric, PCA initialisation, 2 threads for large inputs.
* ``"umap"``: umap-learn, cosine metric, spectral initialisation.
* ``"mds"``: metric MDS (SMACOF, scikit-learn, classical-MDS initialisation) on raw cosine
  distances.
* ``"dcm"``: Data Context Map: the same metric MDS on the merged, per-block normalised
  cosine-distance matrix (:mod:`modalchorus.projection.distances`), the metric-only
  ancestor of the Modal Fusion Map.
* ``"pca"``: scikit-learn PCA.

Large inputs (``mds``, ``dcm``)
-------------------------------
SMACOF needs the full ``N x N`` dissimilarity matrix and ``O(N^2)`` work per iteration, so when
``n_all = n + m > max_points`` (default 2000) it runs on a stratified random sample of
``max_points`` points (*landmarks*; see :func:`landmark_sample`) and every other point is
placed out-of-sample at the inverse-distance-weighted mean of the 2-D positions of its
``n_neighbors_oos`` nearest landmarks, in the same dissimilarity the MDS saw (block-normalised
with the landmarks' block maps for ``dcm``):

.. math:: y = \sum_{l \in N(x)} w_l y_l \Big/ \sum_{l \in N(x)} w_l,
   \qquad w_l = 1 / \max(\delta(x, l), 10^{-12})

Such points land inside the hull of their neighbours: fine for reading a map, though they
add no spread of their own.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from modalchorus.projection.distances import (
    BlockNormaliser,
    block_pair_values,
    distance_blocks,
    fit_block_normaliser,
    l2_normalise,
)
from modalchorus.projection.validation import check_modalities, check_random_state

__all__ = [
    "ProjectionResult",
    "fit_project",
    "landmark_sample",
    "list_methods",
    "place_out_of_sample",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectionResult:
    """A 2-D layout of images and texts produced by one projection method.

    Attributes
    ----------
    Y_image : numpy.ndarray, shape (n, 2)
    Y_text : numpy.ndarray, shape (m, 2)
    method : str
    fit_seconds : float
        Wall-clock seconds of the fit (everything after input validation and L2
        normalisation, including DCM's block normalisation and out-of-sample placement).
    params : dict
        The parameters the method ran with (defaults filled in, ``random_state`` included).
    info : dict
        Method diagnostics (e.g. ``n_landmarks``, ``stress``, resolved ``perplexity``).
    """

    Y_image: np.ndarray
    Y_text: np.ndarray
    method: str
    fit_seconds: float
    params: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


# A method gets the stacked normalised data (N, d), the number of images n (rows [:n]), the
# random state and its (already defaulted) params; it returns the layout (N, 2) and info.
_Fit = Callable[[np.ndarray, int, int | None, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]]


@dataclass(frozen=True)
class _Method:
    fit: _Fit
    defaults: dict[str, Any]
    estimator: Callable[[], type] | None  # whose constructor accepts the remaining params
    own: frozenset[str] = frozenset()  # params consumed by our wrapper, not the estimator


# ------------------------------------------------------------------------------ tsne

#: ``n_jobs="auto"`` uses 2 threads from this many points on.
_TSNE_PARALLEL_MIN_POINTS = 5000


def _fit_tsne(
    X: np.ndarray, n_image: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    from openTSNE import TSNE

    p = dict(params)
    # openTSNE needs 3 * perplexity < N (it would lower it itself, with a warning).
    p["perplexity"] = float(min(p["perplexity"], max((X.shape[0] - 1) / 3.0, 1.0)))
    if p["n_jobs"] == "auto":
        # Below a few thousand points thread synchronisation costs more than it saves
        # (measured on a busy 2-core machine: 10x slower at N = 160, 2.2x at N = 3500).
        p["n_jobs"] = 1 if X.shape[0] < _TSNE_PARALLEL_MIN_POINTS else 2
    emb = TSNE(n_components=2, random_state=random_state, **p).fit(X)
    return np.asarray(emb, dtype=np.float64), {"perplexity": p["perplexity"], "n_jobs": p["n_jobs"]}


# ------------------------------------------------------------------------------ umap


def _fit_umap(
    X: np.ndarray, n_image: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    import umap

    p = dict(params)
    p["n_neighbors"] = int(min(p["n_neighbors"], X.shape[0] - 1))
    Y = umap.UMAP(n_components=2, random_state=random_state, **p).fit_transform(X)
    return np.asarray(Y, dtype=np.float64), {"n_neighbors": p["n_neighbors"]}


# ------------------------------------------------------------------------------- pca


def _fit_pca(
    X: np.ndarray, n_image: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=random_state, **params)
    Y = pca.fit_transform(X)
    return np.asarray(Y, dtype=np.float64), {
        "explained_variance_ratio": pca.explained_variance_ratio_.tolist()
    }


# ------------------------------------------------------------------------- mds / dcm


def landmark_sample(
    n_image: int, n_text: int, max_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices (into the stacked ``[images; texts]``) of a stratified landmark sample.

    Each modality gets its proportional share of ``max_points``, raised to at least
    ``min(size, max(1, max_points // 4))``; the other modality fills the rest. All points when
    ``n_image + n_text <= max_points``.

    Returns
    -------
    numpy.ndarray, shape (min(N, max_points),), sorted
    """
    n_all = n_image + n_text
    if n_all <= max_points:
        return np.arange(n_all)
    floor = max(1, max_points // 4)
    q_image = max(round(max_points * n_image / n_all), min(n_image, floor))
    q_image = min(q_image, max_points - min(n_text, floor))
    q_text = min(n_text, max_points - q_image)
    q_image = min(n_image, max_points - q_text)
    images = rng.choice(n_image, size=q_image, replace=False)
    texts = n_image + rng.choice(n_text, size=q_text, replace=False)
    return np.sort(np.concatenate([images, texts]))


def place_out_of_sample(D: np.ndarray, Y_landmarks: np.ndarray, n_neighbors: int) -> np.ndarray:
    r"""Inverse-distance-weighted mean of the positions of the nearest landmarks.

    ``y_i = sum_{l in N(i)} w_il y_l / sum_l w_il`` with ``w_il = 1 / max(D[i, l], 1e-12)``
    and ``N(i)`` the ``n_neighbors`` smallest entries of row ``i``.

    Parameters
    ----------
    D : numpy.ndarray, shape (c, s)
        Dissimilarities of ``c`` points to the ``s`` landmarks.
    Y_landmarks : numpy.ndarray, shape (s, 2)
    n_neighbors : int

    Returns
    -------
    numpy.ndarray, shape (c, 2)
    """
    k = int(min(n_neighbors, D.shape[1]))
    nbrs = np.argpartition(D, k - 1, axis=1)[:, :k] if k < D.shape[1] else np.indices(D.shape)[1]
    w = 1.0 / np.maximum(np.take_along_axis(D, nbrs, axis=1), 1e-12)
    return np.einsum("ck,ckp->cp", w, Y_landmarks[nbrs]) / w.sum(axis=1, keepdims=True)


def _dissimilarities(
    X: np.ndarray,
    n_image: int,
    rows: np.ndarray,
    cols: np.ndarray,
    normaliser: BlockNormaliser | None,
) -> np.ndarray:
    """Cosine (optionally block-normalised) dissimilarities between stacked rows and cols."""
    D = np.clip(1.0 - X[rows] @ X[cols].T, 0.0, 2.0)
    if normaliser is None:
        return D
    r_img, c_img = rows < n_image, cols < n_image
    for r_mask, c_mask, block in (
        (r_img, c_img, "II"),
        (~r_img, ~c_img, "TT"),
        (r_img, ~c_img, "IT"),
        (~r_img, c_img, "IT"),
    ):
        if r_mask.any() and c_mask.any():
            D[np.ix_(r_mask, c_mask)] = normaliser.transform(D[np.ix_(r_mask, c_mask)], block)
    return D


def _smacof(
    X: np.ndarray,
    n_image: int,
    random_state: int | None,
    params: dict[str, Any],
    normalisation: str | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.manifold import MDS

    p = dict(params)
    max_points, n_oos = int(p.pop("max_points")), int(p.pop("n_neighbors_oos"))
    p.pop("normalisation", None)
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points}")
    if n_oos < 1:
        raise ValueError(f"n_neighbors_oos must be >= 1, got {n_oos}")
    n_all = X.shape[0]
    rng = np.random.default_rng(random_state)
    land = landmark_sample(n_image, n_all - n_image, max_points, rng)
    normaliser = None
    if normalisation is not None:
        # Fit the block maps on the landmarks' own blocks (exactly the DCM of the sample).
        blocks = distance_blocks(X[land[land < n_image]], X[land[land >= n_image]])
        normaliser = fit_block_normaliser(block_pair_values(*blocks), normalisation)
    D = _dissimilarities(X, n_image, land, land, normaliser)
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    # z-scores are shifted to be >= 0 on the fitted pairs; this guards rounding.
    np.maximum(D, 0.0, out=D)
    mds = MDS(
        n_components=2,
        metric_mds=True,
        metric="precomputed",
        random_state=random_state,
        **p,
    )
    Y_land = mds.fit_transform(D)
    Y = np.empty((n_all, 2))
    Y[land] = Y_land
    rest = np.setdiff1d(np.arange(n_all), land)
    step = max(1, (1 << 23) // max(land.size, 1))
    for start in range(0, rest.size, step):
        rows = rest[start : start + step]
        D_rows = _dissimilarities(X, n_image, rows, land, normaliser)
        Y[rows] = place_out_of_sample(D_rows, Y_land, n_oos)
    info = {"n_landmarks": int(land.size), "stress": float(mds.stress_)}
    return Y, info


def _fit_mds(
    X: np.ndarray, n_image: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    return _smacof(X, n_image, random_state, params, normalisation=None)


def _fit_dcm(
    X: np.ndarray, n_image: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    return _smacof(X, n_image, random_state, params, normalisation=params["normalisation"])


# -------------------------------------------------------------------------- registry


def _tsne_cls() -> type:
    from openTSNE import TSNE

    return TSNE


def _umap_cls() -> type:
    import umap

    return umap.UMAP


def _mds_cls() -> type:
    from sklearn.manifold import MDS

    return MDS


def _pca_cls() -> type:
    from sklearn.decomposition import PCA

    return PCA


_MDS_DEFAULTS: dict[str, Any] = {
    "max_points": 2000,
    "n_neighbors_oos": 10,
    "init": "classical_mds",
    "n_init": 1,
    "max_iter": 300,
    "eps": 1e-6,
}

_METHODS: dict[str, _Method] = {
    "tsne": _Method(
        _fit_tsne,
        {"perplexity": 30.0, "metric": "cosine", "initialization": "pca", "n_jobs": "auto"},
        _tsne_cls,
    ),
    "umap": _Method(
        _fit_umap,
        {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "init": "spectral", "n_jobs": 1},
        _umap_cls,
    ),
    "mds": _Method(
        _fit_mds, dict(_MDS_DEFAULTS), _mds_cls, frozenset({"max_points", "n_neighbors_oos"})
    ),
    "dcm": _Method(
        _fit_dcm,
        {**_MDS_DEFAULTS, "normalisation": "minmax"},
        _mds_cls,
        frozenset({"max_points", "n_neighbors_oos", "normalisation"}),
    ),
    "pca": _Method(_fit_pca, {}, _pca_cls),
}
# Set by the wrapper itself, never by the caller.
_RESERVED = frozenset({"n_components", "random_state", "metric_mds", "dissimilarity"})
# The MDS-based methods pass precomputed distances, so ``metric`` is theirs too.
_RESERVED_BY_METHOD = {"mds": frozenset({"metric"}), "dcm": frozenset({"metric"})}


def list_methods() -> list[str]:
    """Names accepted by :func:`fit_project`: ``["tsne", "umap", "mds", "dcm", "pca"]``."""
    return list(_METHODS)


def _check_params(method: str, spec: _Method, params: dict[str, Any]) -> None:
    own = _RESERVED | _RESERVED_BY_METHOD.get(method, frozenset())
    reserved = sorted(own & set(params))
    if reserved:
        raise ValueError(f"{method}: {reserved} are set by fit_project and cannot be passed")
    if spec.estimator is None:
        return
    accepted = set(inspect.signature(spec.estimator().__init__).parameters) - {"self"}
    accepted |= set(spec.own) | set(spec.defaults)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"{method}: unknown parameter(s) {unknown}; accepted: {sorted(accepted - own)}"
        )


def fit_project(
    method: str,
    X_image: ArrayLike,
    X_text: ArrayLike,
    random_state: int | None = 0,
    **params: Any,
) -> ProjectionResult:
    """Project images and texts jointly into 2-D with a baseline method.

    Parameters
    ----------
    method : {"tsne", "umap", "mds", "dcm", "pca"}
        See :func:`list_methods` and the module docstring.
    X_image : array_like, shape (n, d)
        Image embeddings (any scale: rows are L2-normalised here).
    X_text : array_like, shape (m, d)
        Text embeddings in the same space.
    random_state : int or None
        Seed for every random choice (initialisation, neighbour search, landmark sample).
        The same seed gives the same layout.
    **params
        Method parameters; defaults:

        * ``tsne``: ``perplexity=30`` (lowered to ``(N - 1) / 3`` for small N),
          ``metric="cosine"``, ``initialization="pca"``, ``n_jobs="auto"`` (2 threads from
          5000 points on, else 1: resolved value in ``info``); any other
          ``openTSNE.TSNE`` argument.
        * ``umap``: ``n_neighbors=15`` (capped at ``N - 1``), ``min_dist=0.1``,
          ``metric="cosine"``, ``init="spectral"``, ``n_jobs=1`` (umap-learn is only
          reproducible single-threaded); any other ``umap.UMAP`` argument.
        * ``mds``: ``max_points=2000``, ``n_neighbors_oos=10``, ``init="classical_mds"``,
          ``n_init=1``, ``max_iter=300``, ``eps=1e-6``; any other ``sklearn.manifold.MDS``
          argument.
        * ``dcm``: as ``mds`` plus ``normalisation="minmax"`` (or ``"zscore"``,
          ``"quantile"``).
        * ``pca``: any ``sklearn.decomposition.PCA`` argument.

    Returns
    -------
    ProjectionResult

    Raises
    ------
    ValueError
        Unknown method or parameter; inputs that are not finite 2-D arrays with the same
        number of columns, or that contain an all-zero row.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown projection method {method!r}; known methods: {list_methods()}")
    spec = _METHODS[method]
    check_random_state(random_state)
    _check_params(method, spec, params)
    XI, XT = check_modalities(X_image, X_text)
    X = np.vstack([l2_normalise(XI, "X_image"), l2_normalise(XT, "X_text")])
    n = XI.shape[0]
    if X.shape[0] < 4:
        raise ValueError(f"need at least 4 points in total to project, got {X.shape[0]}")
    effective = {**spec.defaults, **params}
    logger.info("fitting %s on %d images + %d texts", method, n, XT.shape[0])
    start = time.perf_counter()
    Y, info = spec.fit(X, n, random_state, effective)
    seconds = time.perf_counter() - start
    if Y.shape != (X.shape[0], 2) or not np.isfinite(Y).all():
        raise RuntimeError(f"{method} produced an invalid layout of shape {Y.shape}")
    logger.info("%s done in %.2f s", method, seconds)
    return ProjectionResult(
        Y_image=Y[:n].copy(),
        Y_text=Y[n:].copy(),
        method=method,
        fit_seconds=seconds,
        params={**effective, "random_state": random_state},
        info=info,
    )
