"""The few array operations the views need, as pure functions (shapes in the docstrings).

These are one-liners over unit-norm embeddings; the estimators and metrics proper live in
:mod:`modalchorus.tasks`, :mod:`modalchorus.metrics` and :mod:`modalchorus.projection`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_centroids(
    prompt_vectors: np.ndarray, prompt_labels: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """Each class's mean prompt embedding, renormalised (prompt ensembling).

    Parameters
    ----------
    prompt_vectors : numpy.ndarray, shape (p, d)
        Unit rows.
    prompt_labels : Sequence[str]
        Length p, the class of each prompt.
    classes : Sequence[str]
        Length c; every class needs at least one prompt.

    Returns
    -------
    numpy.ndarray, shape (c, d)
        Unit rows, in the order of ``classes``.
    """
    labels = np.asarray(prompt_labels, dtype=object)
    means = np.stack([prompt_vectors[labels == c].mean(axis=0) for c in classes])
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)


def top_k_similar(
    query: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates most cosine-similar to ``query``, most similar first.

    Parameters
    ----------
    query : numpy.ndarray, shape (d,)
        Unit norm.
    candidates : numpy.ndarray, shape (m, d)
        Unit rows.
    k : int
        At most ``m`` are returned.

    Returns
    -------
    index : numpy.ndarray, shape (min(k, m),), int64
    similarity : numpy.ndarray, shape (min(k, m),), float32
        ``candidates[index] @ query``, descending (ties by index).
    """
    sims = candidates @ query
    k = min(int(k), sims.shape[0])
    top = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(sims.shape[0])
    order = top[np.lexsort((top, -sims[top]))]
    return order.astype(np.int64), sims[order].astype(np.float32)


def concept_axis(vectors: np.ndarray, concept_a: np.ndarray, concept_b: np.ndarray) -> np.ndarray:
    """Relative similarity ``cos(x, c_b) - cos(x, c_a)`` of every row of ``vectors``.

    Parameters
    ----------
    vectors : numpy.ndarray, shape (n, d)
        Unit rows.
    concept_a, concept_b : numpy.ndarray, shape (d,)
        Unit-norm concept embeddings (the negative and the positive end of the axis).

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        In ``[-2, 2]``; positive means closer to ``concept_b``.
    """
    return (vectors @ (concept_b - concept_a)).astype(np.float32)
