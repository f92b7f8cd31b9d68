"""Fitting, scoring and storing the projection a view shows (run as a background job).

A projection of a dataset under an encoder is stored in the workspace under
``f"{method}:{dataset}:{encoder_id}"`` (the name ``modalchorus project`` uses too) with the
layout's :func:`~modalchorus.metrics.neighbourhood.projection_report` at k = 10 as its
metrics, so reopening the page reads it back at once. The fit is
:func:`~modalchorus.projecting.fit_layout`, as for ``project``, with its progress (the MFM's
training callback) feeding the page's progress bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projecting import (
    METRIC_MAX_POINTS,
    check_joint_sizes,
    fit_layout,
    load_projection_model,
    projection_name,
)
from modalchorus.projection import list_methods
from modalchorus.server.jobs import Progress
from modalchorus.server.views import KIND_CONCEPT, KIND_IMAGE, DatasetView, is_upload
from modalchorus.store import ProjectionInfo, UnknownProjectionError, Workspace

#: The default method (first in :func:`methods`).
DEFAULT_METHOD = "mfm"
#: Neighbourhood size of the stored quality metrics.
METRICS_K = 10
#: Seed of every fit (the same data gives the same map).
RANDOM_STATE = 0


def methods() -> list[str]:
    """Projection methods the server offers, the Modal Fusion Map first."""
    return [DEFAULT_METHOD, *list_methods()]


def check_method(method: str) -> str:
    """Raise ``ValueError`` naming the known methods unless ``method`` is one."""
    if method not in methods():
        raise ValueError(f"unknown projection method {method!r}; known: {methods()}")
    return method


def stored_layout(
    workspace: Workspace, view: DatasetView, method: str
) -> tuple[ProjectionInfo, np.ndarray] | None:
    """The stored projection of ``view`` with ``method``, in view row order.

    Items of the :data:`~modalchorus.server.views.UPLOADS` dataset (added after the fit)
    that an MFM projection does not hold are placed by its fitted network's ``transform``
    (:func:`place_uploads`); the result is not written back here.

    Returns
    -------
    (ProjectionInfo, numpy.ndarray of shape (n, 2), float32) or None
        None when nothing is stored, or when the stored layout does not cover exactly the
        view's items (the dataset changed since the fit) and the difference is not
        uploads an MFM network can place.
    """
    name = projection_name(method, view.dataset, view.encoder_id)
    try:
        info = workspace.projection_info(name)
        ids, coords = workspace.get_projection(name)
    except UnknownProjectionError:
        return None
    rows = np.array([view.row.get(item_id, -1) for item_id in ids], dtype=np.int64)
    absent = rows < 0
    if absent.any() and not all(is_upload(ids[i]) for i in np.flatnonzero(absent)):
        return None  # the dataset's own items changed: the layout is stale
    rows, coords = rows[~absent], coords[~absent]  # uploads without a vector in this view
    ordered = np.full((view.n, 2), np.nan, dtype=np.float32)
    ordered[rows] = coords
    missing = np.flatnonzero(np.isnan(ordered[:, 0]))
    if missing.size:
        if info.method != DEFAULT_METHOD or not info.model_files:
            return None
        if not all(is_upload(view.ids[i]) for i in missing):
            return None
        ordered[missing] = place_uploads(workspace, name, view, missing)
    return info, ordered


def place_uploads(
    workspace: Workspace, name: str, view: DatasetView, rows: np.ndarray
) -> np.ndarray:
    """Place view rows in the frame of the stored MFM projection ``name`` (no re-fit).

    Parameters
    ----------
    workspace : Workspace
    name : str
        A stored MFM projection with its model files.
    view : DatasetView
        Holds the rows' embedding vectors.
    rows : numpy.ndarray, shape (m,)
        View rows to place.

    Returns
    -------
    numpy.ndarray, shape (m, 2), float32
        Images through the network's image branch, texts through its text branch.
    """
    model = load_projection_model(workspace, name)
    out = np.empty((rows.size, 2), dtype=np.float32)
    images = view.kind[rows] == KIND_IMAGE
    for mask, modality in ((images, "image"), (~images, "text")):
        if mask.any():
            out[mask] = model.transform(view.vectors[rows[mask]], modality=modality)
    return out


def store_layout(
    workspace: Workspace, view: DatasetView, info: ProjectionInfo, coords: np.ndarray
) -> ProjectionInfo:
    """Store a layout that :func:`stored_layout` extended, under the same name.

    Method, parameters, metrics (those of the fitted items) and model files are kept.
    """
    return workspace.put_projection(
        info.name,
        view.encoder_id,
        view.ids,
        coords,
        method=info.method,
        params=info.params,
        metrics=info.metrics,
        model_files=workspace.projection_model_files(info.name),
    )


def layout_metrics(view: DatasetView, coords: np.ndarray) -> dict[str, Any]:
    """Quality of a layout: :func:`~modalchorus.metrics.neighbourhood.projection_report` at k=10.

    The same report (and keys) as ``modalchorus project`` stores: ``inter_T@10``,
    ``inter_C@10`` and their two directions, intra-modal ``T_image@10`` ..., and
    ``agreement`` (nearest free text, e.g. class prompt, where the view has some).

    Parameters
    ----------
    view : DatasetView
    coords : numpy.ndarray, shape (n, 2)
        The layout in view row order.

    Returns
    -------
    dict
        JSON-ready; metrics that need more points than the view has are None and named in
        ``skipped``.
    """
    images, texts = view.image_rows, view.text_rows
    concepts = np.flatnonzero(view.kind[texts] == KIND_CONCEPT)
    return projection_report(
        view.vectors[images],
        view.vectors[texts],
        coords[images],
        coords[texts],
        ks=(METRICS_K,),
        concepts=concepts if concepts.size else None,
        max_points=METRIC_MAX_POINTS,
    )


def fit_and_store(
    workspace: Workspace, view: DatasetView, method: str, progress: Progress
) -> ProjectionInfo:
    """Fit ``method`` on the view's images and texts, score the layout, store it.

    Parameters
    ----------
    workspace : Workspace
    view : DatasetView
    method : str
        One of :func:`methods`.
    progress : Progress
        Receives fractions in [0, 1] and a message.

    Returns
    -------
    ProjectionInfo
        Of the stored projection.
    """
    check_method(method)
    images, texts = view.image_rows, view.text_rows
    check_joint_sizes(view.dataset, images.size, texts.size)
    progress(0.02, f"{method}: fitting {images.size} images + {texts.size} texts")
    fitted = fit_layout(
        method,
        view.vectors[images],
        view.vectors[texts],
        random_state=RANDOM_STATE,
        progress=lambda fraction, message: progress(0.05 + 0.8 * fraction, message),
    )
    coords = np.empty((view.n, 2), dtype=np.float32)
    coords[np.concatenate([images, texts])] = np.vstack([fitted.Y_image, fitted.Y_text])
    progress(0.88, "scoring the layout (inter-modal trustworthiness / continuity)")
    metrics = layout_metrics(view, coords)
    progress(0.96, "storing the projection")
    return workspace.put_projection(
        projection_name(method, view.dataset, view.encoder_id),
        view.encoder_id,
        view.ids,
        coords,
        method=method,
        params={
            **fitted.params,
            "fit_seconds": round(fitted.fit_seconds, 3),
            "dataset": view.dataset,
            "n_images": int(images.size),
        },
        metrics=metrics,
        model_files=fitted.model_files,
    )
