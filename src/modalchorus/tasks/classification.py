"""Zero-shot classification: images vs class-prompt embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from modalchorus.data.types import Dataset, TextRecord

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
)


def class_prompts(
    classes: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> list[str]:
    """Prompts in class-major order: ``[t.format(c) for c in classes for t in templates]``."""
    return [t.format(c.replace("_", " ")) for c in classes for t in templates]


def class_embeddings(prompt_embeddings: np.ndarray, n_classes: int) -> np.ndarray:
    """Average each class's template embeddings and renormalise.

    Parameters
    ----------
    prompt_embeddings : ndarray, shape (n_classes * n_templates, d)
        In the order of :func:`class_prompts`.

    Returns
    -------
    ndarray, shape (n_classes, d), unit rows.
    """
    if prompt_embeddings.shape[0] % n_classes:
        raise ValueError(
            f"{prompt_embeddings.shape[0]} prompt embeddings do not split into {n_classes} classes"
        )
    mean = prompt_embeddings.reshape(n_classes, -1, prompt_embeddings.shape[1]).mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True).clip(1e-12)


def zero_shot_report(
    image_embeddings: np.ndarray,
    class_embeddings_: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of nearest-class prediction.

    Parameters
    ----------
    image_embeddings : ndarray, shape (n, d), unit rows
    class_embeddings_ : ndarray, shape (c, d), unit rows
    labels : ndarray of int, shape (n,)
        True class index of each image.
    classes : sequence of str, length c

    Returns
    -------
    dict with ``accuracy``, ``per_class_accuracy`` ({class: acc}), ``confusion``
    (c x c list, rows = true class, columns = predicted), ``predictions`` (n,) and ``n``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if image_embeddings.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{image_embeddings.shape[0]} image embeddings but {labels.shape[0]} labels"
        )
    if image_embeddings.shape[0] == 0:
        raise ValueError("zero-shot evaluation needs at least one image")
    predictions = np.argmax(image_embeddings @ class_embeddings_.T, axis=1)
    c = len(classes)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(c, np.nan), where=support > 0)
    return {
        "n": int(labels.shape[0]),
        "accuracy": float((predictions == labels).mean()),
        "per_class_accuracy": {name: float(a) for name, a in zip(classes, per_class, strict=True)},
        "confusion": confusion.tolist(),
        "predictions": predictions,
    }


def with_class_prompts(dataset: Dataset, templates: Sequence[str] = DEFAULT_TEMPLATES) -> Dataset:
    """``dataset`` plus one free text per (class, template): the zero-shot concepts.

    A dataset without classes, or that already has free texts, is returned unchanged.
    """
    if not dataset.classes or dataset.texts:
        return dataset
    prompts = class_prompts(dataset.classes, templates)
    labels = [c for c in dataset.classes for _ in templates]
    texts = [
        TextRecord(id=f"prompt/{i:04d}", text=text, label=label)
        for i, (text, label) in enumerate(zip(prompts, labels, strict=True))
    ]
    return replace(dataset, texts=texts)
