r"""Cosine distances and per-block normalisation of the merged image+text distance matrix.

Contrastive models put images and texts in separate cones (the *modality gap*): cross-modal
cosine distances are uniformly larger than intra-modal ones, so a projection that preserves
raw distances draws two islands. Normalising each block of the merged matrix separately

.. math::

    D = \begin{pmatrix} D_{II} & D_{IT} \\ D_{IT}^\top & D_{TT} \end{pmatrix}
    \quad\longrightarrow\quad
    \tilde D = \begin{pmatrix} f_{II}(D_{II}) & f_{IT}(D_{IT}) \\
                               f_{IT}(D_{IT})^\top & f_{TT}(D_{TT}) \end{pmatrix}

makes "close for a cross-modal pair" and "close for an intra-modal pair" mean the same thing.
Each ``f_b`` is monotone increasing and fitted on the *pairs of distinct points* of block ``b``
(the zero diagonals of ``D_II`` and ``D_TT`` are left out and stay 0):

* ``"minmax"``: ``f_b(d) = (d - min_b) / (max_b - min_b)``, so each block spans ``[0, 1]``;
* ``"zscore"``: ``f_b(d) = (d - mean_b) / std_b - z_0`` where the global shift
  ``z_0 = min_b min(z_b)`` (the same for all blocks) makes every entry non-negative;
* ``"quantile"``: ``f_b(d) = F_b(d)``, the empirical CDF of the block (``n_quantiles`` knots,
  mid-rank for ties, linear between knots, clamped to ``[0, 1]`` outside the fitted range).

The fitted maps are kept in a :class:`BlockNormaliser`, so distances of new points to the
fitted ones (out-of-sample placement, parametric models) use the same calibration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from modalchorus.projection.validation import as_matrix, check_modalities, check_nonzero_rows

__all__ = [
    "BLOCKS",
    "NORMALISATIONS",
    "BlockNormaliser",
    "block_normalised_distances",
    "block_pair_values",
    "cosine_distances",
    "distance_blocks",
    "fit_block_normaliser",
    "l2_normalise",
]

Block = Literal["II", "TT", "IT"]
Normalisation = Literal["minmax", "zscore", "quantile"]
#: Block names: image-image, text-text, image-text (``"TI"`` is accepted as ``"IT"``).
BLOCKS: tuple[str, ...] = ("II", "TT", "IT")
#: Supported per-block normalisations.
NORMALISATIONS: tuple[str, ...] = ("minmax", "zscore", "quantile")


def l2_normalise(X: ArrayLike, name: str = "X") -> np.ndarray:
    """Rows scaled to unit Euclidean norm.

    Parameters
    ----------
    X : array_like, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n, d), float64

    Raises
    ------
    ValueError
        If ``X`` is invalid (see :func:`~modalchorus.projection.validation.as_matrix`) or has
        an all-zero row.
    """
    A = as_matrix(X, name)
    check_nonzero_rows(A, name)
    # Divide by the largest entry first: squaring entries beyond ~1e154 overflows the norm.
    A = A / np.abs(A).max(axis=1, keepdims=True)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def cosine_distances(A: ArrayLike, B: ArrayLike | None = None) -> np.ndarray:
    """Cosine distances ``1 - <a_i, b_j> / (|a_i| |b_j|)``, clipped to ``[0, 2]``.

    Parameters
    ----------
    A : array_like, shape (n, d)
    B : array_like, shape (m, d), optional
        Defaults to ``A``; then the result is symmetric with an exactly zero diagonal.

    Returns
    -------
    numpy.ndarray, shape (n, m)
    """
    An = l2_normalise(A, "A")
    if B is None:
        D = 1.0 - An @ An.T
        D = 0.5 * (D + D.T)
        np.fill_diagonal(D, 0.0)
    else:
        An, Bn = check_modalities(An, l2_normalise(B, "B"), ("A", "B"))
        D = 1.0 - An @ Bn.T
    return np.clip(D, 0.0, 2.0, out=D)


def distance_blocks(
    X_image: ArrayLike, X_text: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three cosine-distance blocks ``D_II (n, n)``, ``D_TT (m, m)``, ``D_IT (n, m)``."""
    XI, XT = check_modalities(X_image, X_text)
    return cosine_distances(XI), cosine_distances(XT), cosine_distances(XI, XT)


def block_pair_values(
    D_II: np.ndarray, D_TT: np.ndarray, D_IT: np.ndarray
) -> dict[str, np.ndarray]:
    """Distances of the pairs of distinct points of each block, as flat arrays.

    The strict upper triangles of the square blocks ``D_II`` and ``D_TT`` (each pair once,
    no self-pairs) and every entry of ``D_IT``. This is what :func:`fit_block_normaliser`
    fits on; callers that sample pairs can build the same mapping themselves.
    """
    iu_i = np.triu_indices(D_II.shape[0], k=1)
    iu_t = np.triu_indices(D_TT.shape[0], k=1)
    return {"II": D_II[iu_i], "TT": D_TT[iu_t], "IT": np.ravel(D_IT)}


@dataclass(frozen=True)
class BlockNormaliser:
    """Fitted per-block monotone maps ``f_II``, ``f_TT``, ``f_IT`` (see module docstring).

    Attributes
    ----------
    method : {"minmax", "zscore", "quantile"}
    affine : dict
        ``block -> (offset, scale)`` with ``f(d) = (d - offset) / scale`` (minmax, zscore).
    knots : dict
        ``block -> (xp, fp)``, increasing knots of the piecewise-linear CDF (quantile).
    """

    method: str
    affine: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    knots: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def transform(self, D: ArrayLike, block: str) -> np.ndarray:
        """Apply the map of ``block`` (``"II"``, ``"TT"``, ``"IT"`` or ``"TI"``) to ``D``.

        ``D`` may be any array of distances of that block's kind (e.g. distances of new
        points to fitted ones); diagonals are *not* touched here.
        """
        block = _canonical_block(block)
        D = np.asarray(D, dtype=np.float64)
        if self.method == "quantile":
            xp, fp = self.knots[block]
            return np.interp(D, xp, fp)
        offset, scale = self.affine[block]
        return (D - offset) / scale


def _canonical_block(block: str) -> str:
    block = "IT" if block == "TI" else block
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}: use one of {BLOCKS} or 'TI'")
    return block


def fit_block_normaliser(
    values: Mapping[str, ArrayLike], method: Normalisation = "minmax", *, n_quantiles: int = 1001
) -> BlockNormaliser:
    """Fit the per-block maps on the pair distances of each block.

    Parameters
    ----------
    values : mapping
        ``{"II": (p_II,), "TT": (p_TT,), "IT": (p_IT,)}`` distances of pairs of distinct points
        (e.g. from :func:`block_pair_values`). A block with no pairs (a single image or
        text) or no spread gets the identity scale (offset = its value or 0, scale 1).
    method : {"minmax", "zscore", "quantile"}
    n_quantiles : int
        Number of CDF knots for ``"quantile"``.

    Returns
    -------
    BlockNormaliser
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}: use one of {NORMALISATIONS}")
    vals = {b: np.asarray(values[b], dtype=np.float64).ravel() for b in BLOCKS}
    if method == "quantile":
        levels = np.linspace(0.0, 1.0, n_quantiles)
        knots = {}
        for b, v in vals.items():
            if v.size == 0:
                knots[b] = (np.array([0.0, 2.0]), np.array([0.0, 1.0]))
                continue
            q = np.quantile(v, levels)
            # Tied knots (many equal distances) get their mean level: mid-rank CDF.
            xp, inverse = np.unique(q, return_inverse=True)
            fp = np.bincount(inverse, weights=levels) / np.bincount(inverse)
            if xp.size == 1:
                xp, fp = np.array([xp[0], xp[0] + 1.0]), np.array([0.5, 1.0])
            knots[b] = (xp, fp)
        return BlockNormaliser(method, knots=knots)
    affine: dict[str, tuple[float, float]] = {}
    for b, v in vals.items():
        if v.size == 0:
            affine[b] = (0.0, 1.0)
        elif method == "minmax":
            lo, hi = float(v.min()), float(v.max())
            affine[b] = (lo, hi - lo if hi > lo else 1.0)
        else:
            mean, std = float(v.mean()), float(v.std())
            affine[b] = (mean, std if std > 0 else 1.0)
    if method == "zscore":
        # One global shift keeps the blocks comparable and all entries >= 0.
        z0 = min((float(v.min()) - affine[b][0]) / affine[b][1] for b, v in vals.items() if v.size)
        affine = {b: (off + z0 * sc, sc) for b, (off, sc) in affine.items()}
    return BlockNormaliser(method, affine=affine)


def block_normalised_distances(
    X_image: ArrayLike,
    X_text: ArrayLike,
    method: Normalisation = "minmax",
    *,
    return_normaliser: bool = False,
) -> np.ndarray | tuple[np.ndarray, BlockNormaliser]:
    r"""Merged, per-block normalised cosine-distance matrix of images and texts.

    Rows/columns ``0..n-1`` are the images, ``n..n+m-1`` the texts. The result is symmetric,
    non-negative, with a zero diagonal; under ``"minmax"`` each block's off-diagonal entries
    span exactly ``[0, 1]``.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_text : array_like, shape (m, d)
    method : {"minmax", "zscore", "quantile"}
        Per-block map (module docstring).
    return_normaliser : bool
        Also return the fitted :class:`BlockNormaliser`.

    Returns
    -------
    numpy.ndarray, shape (n + m, n + m)
        ``\tilde D``; with ``return_normaliser``, the tuple ``(\tilde D, normaliser)``.
    """
    D_II, D_TT, D_IT = distance_blocks(X_image, X_text)
    norm = fit_block_normaliser(block_pair_values(D_II, D_TT, D_IT), method)
    n = D_II.shape[0]
    D = np.empty((n + D_TT.shape[0],) * 2)
    D[:n, :n] = norm.transform(D_II, "II")
    D[n:, n:] = norm.transform(D_TT, "TT")
    D[:n, n:] = norm.transform(D_IT, "IT")
    D[n:, :n] = D[:n, n:].T
    np.fill_diagonal(D, 0.0)
    np.maximum(D, 0.0, out=D)  # z-score shift: guard against -1e-17 from rounding
    return (D, norm) if return_normaliser else D
