"""Task metrics: retrieval recall on a hand-computed case, and chunking changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from modalchorus.tasks import recall_at_k, retrieval_report


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_recall_at_k_hand_computed() -> None:
    gallery = np.eye(3)
    # Query 0 ranks item 0 first; query 1 ranks item 2, then 1, then 0.
    query = _unit(np.array([[1.0, 0.2, 0.1], [0.0, 0.5, 1.0]]))
    assert recall_at_k(query, gallery, [[0], [0]], ks=(1, 2, 3)) == {1: 0.5, 2: 0.5, 3: 1.0}
    # Any relevant item counts: the best-ranked one decides.
    assert recall_at_k(query, gallery, [[2], [0, 1]], ks=(1, 2, 3)) == {1: 0.0, 2: 0.5, 3: 1.0}
    with pytest.raises(ValueError, match="2 queries but 1 relevance lists"):
        recall_at_k(query, gallery, [[0]], ks=(1,))


def test_chunked_scoring_and_grouped_captions_give_the_same_report() -> None:
    rng = np.random.default_rng(3)
    images = _unit(rng.normal(size=(40, 16)))
    owner = rng.permutation(np.repeat(np.arange(40), 3))  # captions in no particular order
    texts = _unit(images[owner] + 0.9 * rng.normal(size=(120, 16)))
    whole = retrieval_report(images, texts, owner)
    captions_of = [np.flatnonzero(owner == i) for i in range(40)]
    scores = images @ texts.T
    best = np.array([scores[i, c].max() for i, c in enumerate(captions_of)])
    expected = ((scores > best[:, None]).sum(axis=1) < 5).mean()
    assert whole["i2t_R@5"] == expected
    for max_scores in (1, 7, 130):  # one query row at a time, a few, all
        chunked = recall_at_k(images, texts, captions_of, ks=(1, 5, 10), max_scores=max_scores)
        assert chunked == {k: whole[f"i2t_R@{k}"] for k in (1, 5, 10)}
