"""Encoder evaluation on the shipped datasets (``modalchorus eval-encoder``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modalchorus.data import Dataset
from modalchorus.encoders import Encoder
from modalchorus.tasks import class_prompts, retrieval_report, zero_shot_report
from modalchorus.tasks.classification import DEFAULT_TEMPLATES, class_embeddings


def evaluate_zero_shot(
    encoder: Encoder, dataset: Dataset, templates: tuple[str, ...] = DEFAULT_TEMPLATES
) -> dict[str, Any]:
    """Zero-shot accuracy of ``encoder`` on a labelled dataset with prompt ensembling.

    Each class is the mean embedding of ``templates`` filled with its name; each image is
    assigned to the most cosine-similar class.
    """
    if not dataset.classes:
        raise ValueError(f"dataset {dataset.name!r} has no classes: zero-shot needs labels")
    start = time.perf_counter()
    prompts = class_prompts(dataset.classes, templates)
    classes = class_embeddings(encoder.encode_texts(prompts), len(dataset.classes))
    images = encoder.encode_images([r.load() for r in dataset.images], progress=True)
    labels = np.array([dataset.classes.index(r.label) for r in dataset.images])
    report = zero_shot_report(images, classes, labels, dataset.classes)
    report.pop("predictions")
    return {
        "task": "zero-shot classification",
        "dataset": dataset.name,
        "encoder": encoder.id,
        "templates": list(templates),
        **report,
        "seconds": round(time.perf_counter() - start, 2),
    }


def evaluate_retrieval(encoder: Encoder, dataset: Dataset, split: str | None) -> dict[str, Any]:
    """Recall@1/5/10 in both directions on the captioned images of ``split`` (None = all)."""
    records = [r for r in dataset.images if split is None or r.split == split]
    records = [r for r in records if r.captions]
    if not records:
        raise ValueError(f"dataset {dataset.name!r} has no captioned images in split {split!r}")
    start = time.perf_counter()
    texts = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions])
    images = encoder.encode_images([r.load() for r in records], progress=True)
    report = retrieval_report(images, encoder.encode_texts(texts), owner)
    return {
        "task": "cross-modal retrieval",
        "dataset": dataset.name,
        "split": split,
        "encoder": encoder.id,
        **report,
        "seconds": round(time.perf_counter() - start, 2),
    }
