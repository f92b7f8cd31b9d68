r"""Sampling helpers of the Modal Fusion Map: neighbour lists, pair samples, batches.

Nothing here ever holds an ``(N + M) x (N + M)`` matrix: neighbour lists are computed per
block of query rows (:func:`knn_cosine`), the per-block normaliser is fitted on random pairs
(:func:`sample_block_pairs`), and training batches are index sets (:class:`BatchSampler`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "BatchSampler",
    "calibrate_bandwidths",
    "knn_cosine",
    "sample_block_pairs",
]

#: Upper bound on the entries of one block of similarities (32 MiB in float32).
_MAX_BLOCK_ELEMENTS = 1 << 23


def knn_cosine(
    Q: np.ndarray, C: np.ndarray, k: int, *, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest candidates by cosine distance, computed in blocks of query rows.

    Parameters
    ----------
    Q : numpy.ndarray, shape (q, d)
        L2-normalised queries.
    C : numpy.ndarray, shape (c, d)
        L2-normalised candidates.
    k : int
        Number of neighbours (``k <= c``, or ``c - 1`` with ``exclude_self``).
    exclude_self : bool
        Queries are the candidates (same rows): a query is not its own neighbour.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Indices into ``C`` (int64) and cosine distances (float32), shape (q, k) each,
        nearest first. Memory ``O(block * c)`` with ``block * c <= 2^23``.
    """
    n_q, n_c = Q.shape[0], C.shape[0]
    if k < 1 or k > n_c - int(exclude_self):
        raise ValueError(f"k={k} neighbours need more than {n_c} candidates")
    rows = max(1, _MAX_BLOCK_ELEMENTS // max(n_c, 1))
    idx = np.empty((n_q, k), dtype=np.int64)
    dist = np.empty((n_q, k), dtype=np.float32)
    for start in range(0, n_q, rows):
        stop = min(start + rows, n_q)
        D = 1.0 - Q[start:stop] @ C.T
        if exclude_self:
            D[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(D, k - 1, axis=1)[:, :k] if k < n_c else np.indices(D.shape)[1]
        d_part = np.take_along_axis(D, part, axis=1)
        order = np.argsort(d_part, axis=1, kind="stable")
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        dist[start:stop] = np.take_along_axis(d_part, order, axis=1)
    return idx, np.clip(dist, 0.0, 2.0)


def sample_block_pairs(
    X_image: np.ndarray, X_text: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Cosine distances of random pairs of distinct points of each block.

    All pairs of a block when it has at most ``n_pairs`` of them (exactly the values
    :func:`~modalchorus.projection.distances.block_pair_values` would return), else
    ``n_pairs`` pairs drawn uniformly with replacement (self-pairs excluded).

    Returns
    -------
    dict
        ``{"II": (p_II,), "TT": (p_TT,), "IT": (p_IT,)}`` float64, the input of
        :func:`~modalchorus.projection.distances.fit_block_normaliser`.
    """

    def pairs(A: np.ndarray, B: np.ndarray, same: bool) -> np.ndarray:
        na, nb = A.shape[0], B.shape[0]
        total = na * (na - 1) // 2 if same else na * nb
        if total == 0:
            return np.empty(0)
        if total <= n_pairs:
            if same:
                i, j = np.triu_indices(na, k=1)
            else:
                i, j = np.divmod(np.arange(total), nb)
        else:
            i = rng.integers(na, size=n_pairs)
            j = rng.integers(nb - 1 if same else nb, size=n_pairs)
            if same:
                j = j + (j >= i)  # uniform over the others
        d = np.empty(i.size)
        step = max(1, _MAX_BLOCK_ELEMENTS // max(A.shape[1], 1))
        for s in range(0, i.size, step):
            d[s : s + step] = (A[i[s : s + step]] * B[j[s : s + step]]).sum(axis=1)
        return np.clip(1.0 - d, 0.0, 2.0)

    return {
        "II": pairs(X_image, X_image, True),
        "TT": pairs(X_text, X_text, True),
        "IT": pairs(X_image, X_text, False),
    }


def calibrate_bandwidths(
    distances: np.ndarray, perplexity: float, n_iter: int = 64, tol: float = 1e-4
) -> np.ndarray:
    r"""Per-row bandwidths ``\sigma_i`` giving ``softmax(-d_i / \sigma_i)`` a set perplexity.

    Bisection on ``\log \sigma_i`` (vectorised over rows) so that
    ``2^{H(p_i)} = perplexity`` with ``p_{ij} \propto \exp(-(d_{ij} - d_{i1}) / \sigma_i)``
    over the row's ``k`` neighbour distances, as t-SNE does with squared distances.

    Parameters
    ----------
    distances : numpy.ndarray, shape (n, k)
        Each row's neighbour distances (e.g. from :func:`knn_cosine`).
    perplexity : float
        Target perplexity, ``1 < perplexity < k``.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Bandwidths ``\sigma_i > 0``.
    """
    d = np.asarray(distances, dtype=np.float64)
    d = d - d.min(axis=1, keepdims=True)
    n, k = d.shape
    target = np.log(min(max(perplexity, 1.0 + 1e-3), k - 1e-3))
    spread = np.maximum(d.max(axis=1), 1e-12)
    lo, hi = np.log(spread * 1e-4), np.log(spread * 1e4)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        logits = -d / np.exp(mid)[:, None]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
        too_flat = entropy > target
        hi = np.where(too_flat, mid, hi)
        lo = np.where(too_flat, lo, mid)
        if np.max(hi - lo) < tol:
            break
    return np.exp(0.5 * (lo + hi))


class BatchSampler:
    """Draws training batches that mix both modalities and hold each anchor's neighbours.

    A batch is ``n_anchors`` anchors (a share ``image_fraction`` of them images), plus, for each
    anchor, one neighbour drawn uniformly from its cross-modal k-NN list and one from its
    intra-modal k-NN list. Indices refer to the stacked ``[images; texts]`` training rows.

    Parameters
    ----------
    n_image, n_text : int
        Rows ``[0, n_image)`` are images, ``[n_image, n_image + n_text)`` texts.
    cross_knn : numpy.ndarray, shape (n_image + n_text, k_c)
        Stacked indices of each row's cross-modal neighbours.
    intra_knn : numpy.ndarray, shape (n_image + n_text, k_i) or None
        Stacked indices of each row's intra-modal neighbours.
    n_anchors : int
    generator : torch.Generator
    image_fraction : float
        Share of the anchors drawn among the images (the rest among the texts).
    """

    def __init__(
        self,
        n_image: int,
        n_text: int,
        cross_knn: np.ndarray,
        intra_knn: np.ndarray | None,
        n_anchors: int,
        generator: torch.Generator,
        image_fraction: float = 0.5,
    ) -> None:
        self.n_image, self.n_text = n_image, n_text
        self.cross = torch.as_tensor(cross_knn, dtype=torch.int64)
        self.intra = None if intra_knn is None else torch.as_tensor(intra_knn, dtype=torch.int64)
        self.n_anchors = int(n_anchors)
        self.generator = generator
        self.image_fraction = float(image_fraction)

    def __call__(self) -> torch.Tensor:
        """Sorted unique stacked row indices of one batch, shape (b,)."""
        g = self.generator
        a_img = min(max(1, round(self.n_anchors * self.image_fraction)), self.n_anchors - 1)
        a_txt = self.n_anchors - a_img
        anchors = torch.cat(
            [
                torch.randint(self.n_image, (a_img,), generator=g),
                self.n_image + torch.randint(self.n_text, (a_txt,), generator=g),
            ]
        )
        parts = [anchors, self._pick(self.cross, anchors)]
        if self.intra is not None:
            parts.append(self._pick(self.intra, anchors))
        return torch.unique(torch.cat(parts))

    def _pick(self, knn: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        col = torch.randint(knn.shape[1], (anchors.numel(),), generator=self.generator)
        return knn[anchors, col]
