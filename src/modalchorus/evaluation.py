"""Encoder evaluation on the shipped datasets (``modalchorus eval-encoder``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from modalchorus.data import Dataset
from modalchorus.embedding import encode_image_records
from modalchorus.encoders import Encoder
from modalchorus.store import Workspace
from modalchorus.tasks import class_prompts, retrieval_report, zero_shot_report
from modalchorus.tasks.classification import DEFAULT_TEMPLATES, class_embeddings

#: ``progress(fraction, message)``.
Progress = Callable[[float, str], None]


def evaluate_zero_shot(
    encoder: Encoder,
    dataset: Dataset,
    templates: tuple[str, ...] = DEFAULT_TEMPLATES,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Zero-shot accuracy of ``encoder`` on a labelled dataset with prompt ensembling.

    Each class is the mean embedding of ``templates`` filled with its name; each image is
    assigned to the most cosine-similar class. ``progress(fraction, message)`` follows the
    image batches.
    """
    if not dataset.classes:
        raise ValueError(f"dataset {dataset.name!r} has no classes: zero-shot needs labels")
    start = time.perf_counter()
    prompts = class_prompts(dataset.classes, templates)
    classes = class_embeddings(encoder.encode_texts(prompts), len(dataset.classes))
    images = encode_image_records(encoder, dataset.images, progress=progress)
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


def evaluate_retrieval(
    encoder: Encoder, dataset: Dataset, split: str | None, progress: Progress | None = None
) -> dict[str, Any]:
    """Recall@1/5/10 in both directions on the captioned images of ``split`` (None = all).

    ``progress(fraction, message)`` follows the image batches.
    """
    records = [r for r in dataset.images if split is None or r.split == split]
    records = [r for r in records if r.captions]
    if not records:
        raise ValueError(f"dataset {dataset.name!r} has no captioned images in split {split!r}")
    start = time.perf_counter()
    texts = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions])
    images = encode_image_records(encoder, records, progress=progress)
    report = retrieval_report(images, encoder.encode_texts(texts), owner)
    return {
        "task": "cross-modal retrieval",
        "dataset": dataset.name,
        "split": split,
        "encoder": encoder.id,
        **report,
        "seconds": round(time.perf_counter() - start, 2),
    }


def workspace_task_metrics(workspace: Workspace, encoder_id: str, dataset: str) -> dict[str, Any]:
    """Task metrics of a workspace dataset from its stored embeddings (nothing is encoded).

    Classification datasets (with classes and stored class prompts) get zero-shot accuracy
    with prompt ensembling; captioned ones get retrieval Recall@k.
    """
    return task_metrics(
        workspace, dataset, lambda ids: workspace.get_embeddings(encoder_id, ids)[1]
    )


def task_metrics(
    workspace: Workspace, dataset: str, vectors_of: Callable[[list[str]], np.ndarray]
) -> dict[str, Any]:
    """Task metrics of a workspace dataset with embeddings from ``vectors_of``.

    Parameters
    ----------
    workspace : Workspace
        Supplies the dataset's items, labels, classes and caption-image pairs.
    dataset : str
    vectors_of : callable
        ``vectors_of(item_ids)`` returns their unit embeddings, shape (len(item_ids), d)
        (e.g. an embedding version not stored yet).

    Returns
    -------
    dict
        ``task`` (``"zero-shot classification"``, ``"cross-modal retrieval"`` or None),
        ``dataset`` and the task's report. Zero-shot scores the images labelled with a
        class that has prompts (``n`` of them) among those classes; a dataset with no
        such image falls back to retrieval over its captions, or None.
    """
    info = workspace.dataset(dataset)
    items = workspace.items(dataset=dataset)
    images = items[items["kind"] == "image"]
    texts = items[items["kind"] == "text"]
    image_vectors = vectors_of(images["id"].tolist())
    prompts = texts[texts["image_id"].isna() & texts["label"].isin(info.classes or [])]
    # Only classes with prompts can be predicted, and only images labelled with one of
    # them can be scored: a manifest may leave some images unlabelled.
    classes = [c for c in info.classes or [] if (prompts["label"] == c).any()]
    scored = images["label"].isin(classes).to_numpy()
    if scored.any():
        prompt_vectors = vectors_of(prompts["id"].tolist())
        labels_of_prompts = prompts["label"].to_numpy()
        concepts = np.stack([prompt_vectors[labels_of_prompts == c].mean(axis=0) for c in classes])
        concepts /= np.linalg.norm(concepts, axis=1, keepdims=True).clip(1e-12)
        labels = np.array([classes.index(label) for label in images["label"][scored]])
        report = zero_shot_report(image_vectors[scored], concepts, labels, classes)
        report.pop("predictions")
        return {"task": "zero-shot classification", "dataset": dataset, **report}
    captions = texts[texts["image_id"].notna()]
    if captions.empty:
        return {"task": None, "dataset": dataset}
    caption_vectors = vectors_of(captions["id"].tolist())
    row_of = {item_id: row for row, item_id in enumerate(images["id"])}
    owner = np.array([row_of[i] for i in captions["image_id"]])
    return {
        "task": "cross-modal retrieval",
        "dataset": dataset,
        **retrieval_report(image_vectors, caption_vectors, owner),
    }
