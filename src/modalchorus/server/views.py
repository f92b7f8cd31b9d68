"""Dataset views: one dataset's items joined with one encoder's embeddings, cached.

A :class:`DatasetView` is what every endpoint reads: item ids in a fixed order (the
workspace's item order: images, then texts), their kinds, labels, zero-shot predictions,
caption-image pairs and embedding vectors. The points frame, projections, the concept axis
and neighbour queries all use the same row order.

Items the user added through the augmentation panel live in the dataset :data:`UPLOADS`;
they are the user's own probes, so every other dataset's view shows them too, after the
dataset's own rows (its images, then its texts, then the uploaded images and texts).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from modalchorus.metrics.neighbourhood import nearest_concepts
from modalchorus.server.analysis import class_centroids
from modalchorus.store import UnknownDatasetError, Workspace

#: Glyph codes of the ``kind`` column of the points frame.
KIND_IMAGE, KIND_CAPTION, KIND_CONCEPT = 0, 1, 2
KIND_NAMES = ("image", "caption", "concept")
TASK_CLASSIFICATION = "zero-shot classification"
TASK_RETRIEVAL = "retrieval"
#: The dataset of user-added images and texts, shown in every other dataset's view.
UPLOADS = "uploads"


@dataclass(frozen=True)
class DatasetView:
    """One dataset under one encoder, rows in workspace item order (images, then texts).

    Attributes
    ----------
    dataset, encoder_id : str
    ids : list[str]
        Length n: items of the dataset that have an embedding for the encoder.
    kind : numpy.ndarray, shape (n,), uint8
        ``KIND_IMAGE``, ``KIND_CAPTION`` (text with an image) or ``KIND_CONCEPT`` (free text).
    labels : list[str | None]
        Length n.
    texts : list[str | None]
        Length n, the text of text items.
    splits : list[str | None]
        Length n.
    pair : numpy.ndarray, shape (n,), int32
        For a caption, the row of its image (-1 otherwise, or when the image is absent).
    vectors : numpy.ndarray, shape (n, d), float32
        Unit rows.
    classes : list[str] | None
        The dataset's classes.
    stamp : tuple
        What the view was built from (see :class:`ViewCache`): values derived from a view
        may be cached under it.
    """

    dataset: str
    encoder_id: str
    ids: list[str]
    kind: np.ndarray
    labels: list[str | None]
    texts: list[str | None]
    splits: list[str | None]
    pair: np.ndarray
    vectors: np.ndarray
    classes: list[str] | None
    row: dict[str, int] = field(repr=False)
    stamp: tuple = ()

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.ids)

    @cached_property
    def image_rows(self) -> np.ndarray:
        """Rows of image items, shape (n_images,)."""
        return np.flatnonzero(self.kind == KIND_IMAGE)

    @cached_property
    def text_rows(self) -> np.ndarray:
        """Rows of text items (captions and concepts), shape (n_texts,)."""
        return np.flatnonzero(self.kind != KIND_IMAGE)

    @cached_property
    def concept_rows(self) -> np.ndarray:
        """Rows of concept texts labelled with one of the classes, shape (n_concepts,)."""
        classes = set(self.classes or ())
        return np.array(
            [i for i in np.flatnonzero(self.kind == KIND_CONCEPT) if self.labels[i] in classes],
            dtype=np.int64,
        )

    @cached_property
    def label_names(self) -> list[str]:
        """Names of the ``label`` / ``predicted`` codes: the classes, else the sorted labels."""
        if self.classes:
            return list(self.classes)
        return sorted({label for label in self.labels if label is not None})

    @cached_property
    def label_codes(self) -> np.ndarray:
        """Index of each row's label in :attr:`label_names` (-1 for none), shape (n,), int16."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return np.array([index.get(label, -1) for label in self.labels], dtype=np.int16)

    @cached_property
    def tasks(self) -> list[str]:
        """Tasks this view supports, preferred first."""
        tasks = []
        if self.classes and self.concept_rows.size:
            tasks.append(TASK_CLASSIFICATION)
        if (self.pair >= 0).any():
            tasks.append(TASK_RETRIEVAL)
        return tasks

    @cached_property
    def predicted(self) -> np.ndarray:
        """Zero-shot prediction (index into ``classes``) of each image row, -1 elsewhere.

        An image is assigned the class whose mean prompt embedding is nearest in cosine
        distance (:func:`~modalchorus.metrics.neighbourhood.nearest_concepts`), as in
        :func:`~modalchorus.evaluation.workspace_task_metrics`.
        """
        out = np.full(self.n, -1, dtype=np.int16)
        if TASK_CLASSIFICATION not in self.tasks or not self.image_rows.size:
            return out
        assert self.classes is not None
        rows = self.concept_rows
        centroids = class_centroids(
            self.vectors[rows], [self.labels[i] for i in rows], self.classes
        )
        out[self.image_rows] = nearest_concepts(self.vectors[self.image_rows], centroids)
        return out


def build_view(
    workspace: Workspace, dataset: str, encoder_id: str, stamp: tuple = ()
) -> DatasetView:
    """Join a dataset's items (and the :data:`UPLOADS` items) with their stored embeddings.

    Raises
    ------
    UnknownDatasetError, UnknownEncoderError
        From the workspace.
    """
    info = workspace.dataset(dataset)
    items = workspace.items(dataset=dataset)
    ids, vectors = workspace.get_embeddings(encoder_id, dataset=dataset)
    if dataset != UPLOADS and has_uploads(workspace):
        extra_ids, extra_vectors = workspace.get_embeddings(encoder_id, dataset=UPLOADS)
        if extra_ids:
            items = pd.concat([items, workspace.items(dataset=UPLOADS)], ignore_index=True)
            ids, vectors = ids + extra_ids, np.concatenate([vectors, extra_vectors])
    items = items.set_index("id").loc[ids]
    is_text = (items["kind"] == "text").to_numpy()
    has_image = items["image_id"].notna().to_numpy()
    kind = np.where(is_text, np.where(has_image, KIND_CAPTION, KIND_CONCEPT), KIND_IMAGE)
    row = {item_id: i for i, item_id in enumerate(ids)}
    pair = np.array(
        [
            row.get(image_id, -1) if isinstance(image_id, str) else -1
            for image_id in items["image_id"]
        ],
        dtype=np.int32,
    )
    return DatasetView(
        dataset=dataset,
        encoder_id=encoder_id,
        ids=list(ids),
        kind=kind.astype(np.uint8),
        labels=_optional_strings(items["label"]),
        texts=_optional_strings(items["text"]),
        splits=_optional_strings(items["split"]),
        pair=pair,
        vectors=vectors,
        classes=None if info.classes is None else list(info.classes),
        row=row,
        stamp=stamp,
    )


def has_uploads(workspace: Workspace) -> bool:
    """Whether the workspace has the :data:`UPLOADS` dataset."""
    return any(d.name == UPLOADS for d in workspace.datasets())


def is_upload(item_id: str) -> bool:
    """Whether an item id belongs to the :data:`UPLOADS` dataset."""
    return item_id.startswith(f"{UPLOADS}/")


def _optional_strings(column: pd.Series) -> list[str | None]:
    return [value if isinstance(value, str) else None for value in column.tolist()]


class ViewCache:
    """Views by ``(dataset, encoder)``, rebuilt when the dataset changes.

    A view holds its items' vectors, so only the ``max_views`` most recently used are kept
    (each alignment run adds an embedding version, and a before/after comparison views it).

    Parameters
    ----------
    workspace : Workspace
    max_views : int
    """

    def __init__(self, workspace: Workspace, max_views: int = 8) -> None:
        self._workspace = workspace
        self._max_views = max_views
        self._views: OrderedDict[tuple[str, str], tuple[tuple, DatasetView]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0

    def _stamp(self, dataset: str, encoder_id: str) -> tuple:
        """Cheap change marker: the last updates of the dataset and of :data:`UPLOADS`, the
        embedded encoders, and how often :meth:`clear` was called.

        Re-embedding a dataset updates it (``embed_dataset`` adds it first); code that
        replaces embeddings in place calls :meth:`clear`.
        """
        infos = {d.name: d for d in self._workspace.datasets()}
        if dataset == UPLOADS:
            raise UnknownDatasetError(
                f"{UPLOADS!r} holds the items added through Augment, which every dataset's "
                "view shows: choose one of the other datasets"
            )
        if dataset not in infos:
            self._workspace.dataset(dataset)  # raises UnknownDatasetError
        stamp: tuple = ()
        for name in dict.fromkeys((dataset, UPLOADS)):
            info = infos.get(name)
            if info is not None:
                stamp += (info.updated_at, info.n_images, info.n_texts)
        encoders = self._workspace.embedded_encoders()
        return (*stamp, encoder_id in encoders, self._generation)

    def get(self, dataset: str, encoder_id: str) -> DatasetView:
        """The view of ``dataset`` under ``encoder_id`` (built on first use)."""
        key = (dataset, encoder_id)
        stamp = self._stamp(dataset, encoder_id)
        with self._lock:
            cached = self._views.get(key)
            if cached is not None and cached[0] == stamp:
                self._views.move_to_end(key)
                return cached[1]
        view = build_view(self._workspace, dataset, encoder_id, (dataset, encoder_id, *stamp))
        with self._lock:
            self._views[key] = (stamp, view)
            self._views.move_to_end(key)
            while len(self._views) > self._max_views:
                self._views.popitem(last=False)
        return view

    def clear(self) -> None:
        """Forget every view (e.g. after embeddings were replaced).

        Views built afterwards get new stamps, so values cached under the old ones are
        not reused either.
        """
        with self._lock:
            self._views.clear()
            self._generation += 1
