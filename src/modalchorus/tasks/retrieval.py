"""Cross-modal retrieval: Recall@k text->image and image->text against ground-truth pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(
    query: np.ndarray,
    gallery: np.ndarray,
    relevant: Sequence[Sequence[int]],
    ks: Sequence[int],
    max_scores: int = 2**24,
) -> dict[int, float]:
    """Share of queries with at least one relevant gallery item among the top k.

    Parameters
    ----------
    query : ndarray, shape (q, d), unit rows
    gallery : ndarray, shape (g, d), unit rows
    relevant : q sequences of gallery indices
    ks : cut-offs
    max_scores : int
        Scores held at once (queries are scored in chunks of ``max_scores // g`` rows).

    Returns
    -------
    {k: recall} for each k.
    """
    if query.shape[0] != len(relevant):
        raise ValueError(f"{query.shape[0]} queries but {len(relevant)} relevance lists")
    if query.shape[0] == 0 or gallery.shape[0] == 0:
        raise ValueError("retrieval needs at least one query and one gallery item")
    rank = np.empty(query.shape[0], dtype=np.int64)
    chunk_rows = max(1, max_scores // gallery.shape[0])
    for start in range(0, query.shape[0], chunk_rows):
        scores = query[start : start + chunk_rows] @ gallery.T
        lists = relevant[start : start + chunk_rows]
        # Rank of the best relevant item = number of gallery items scoring strictly higher.
        best = np.array([scores[i, list(r)].max() for i, r in enumerate(lists)])
        rank[start : start + len(lists)] = (scores > best[:, None]).sum(axis=1)
    return {int(k): float((rank < k).mean()) for k in ks}


def retrieval_report(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_to_image: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k in both directions for captioned images.

    Parameters
    ----------
    image_embeddings : ndarray, shape (n, d)
    text_embeddings : ndarray, shape (m, d)
    text_to_image : ndarray of int, shape (m,)
        Index of the image each caption describes.

    Returns
    -------
    ``{"t2i_R@1": ..., "i2t_R@1": ..., ...}`` plus ``n_images`` and ``n_texts``.
    """
    text_to_image = np.asarray(text_to_image, dtype=np.int64)
    t2i = recall_at_k(text_embeddings, image_embeddings, [[j] for j in text_to_image], ks)
    order = np.argsort(text_to_image, kind="stable")
    bounds = np.searchsorted(text_to_image[order], np.arange(image_embeddings.shape[0] + 1))
    captions_of = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if any(len(c) == 0 for c in captions_of):
        raise ValueError("every image needs at least one caption for image->text retrieval")
    i2t = recall_at_k(image_embeddings, text_embeddings, captions_of, ks)
    report: dict[str, float] = {f"t2i_R@{k}": v for k, v in t2i.items()}
    report |= {f"i2t_R@{k}": v for k, v in i2t.items()}
    report |= {"n_images": image_embeddings.shape[0], "n_texts": text_embeddings.shape[0]}
    return report
