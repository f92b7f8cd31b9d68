"""Projection view: fit (as a job) or read the stored 2-D layout of a dataset's items."""

from __future__ import annotations

import gzip
import re
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from modalchorus.exporting import csv_safe, layout_table, relative_sources
from modalchorus.projecting import projection_dataset
from modalchorus.server.compression import accepts_gzip
from modalchorus.server.errors import conflict, invalid, not_found
from modalchorus.server.frames import MEDIA_TYPE, encode_frame
from modalchorus.server.projections import check_method
from modalchorus.server.schemas import (
    Problem,
    ProjectionMeta,
    ProjectionRequest,
    ProjectionStatus,
)
from modalchorus.server.state import ServerState, get_state
from modalchorus.server.views import KIND_NAMES, DatasetView
from modalchorus.store import ProjectionInfo

router = APIRouter(tags=["projection"])
State = Annotated[ServerState, Depends(get_state)]
DatasetQ = Annotated[str, Query(min_length=1, description="Dataset name.")]
EncoderQ = Annotated[str, Query(min_length=1, description="Encoder id.")]
MethodQ = Annotated[str, Query(min_length=1, description="Projection method.")]
VersionQ = Annotated[
    str | None,
    Query(
        min_length=1,
        description="An exact embedding version of the encoder's family (e.g. an alignment "
        "run's parent_encoder_id, for a before/after comparison) instead of its active one.",
    ),
]
NOT_FOUND = {404: {"model": Problem}}
CONFLICT = {409: {"model": Problem}}


def _meta(info: ProjectionInfo, n_points: int | None = None) -> ProjectionMeta:
    """``n_points``: the points the view draws; removed uploads stay stored until a refit."""
    dataset = info.params.get("dataset")
    if not isinstance(dataset, str):  # e.g. stored by ``modalchorus project``
        dataset = projection_dataset(info.name, info.method, info.encoder_id)
    return ProjectionMeta(
        name=info.name,
        dataset=dataset,
        encoder=info.encoder_id,
        method=info.method,
        n_items=info.n_items if n_points is None else n_points,
        params=info.params,
        metrics=info.metrics,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def _view(
    state: ServerState,
    dataset: str,
    encoder: str,
    method: str,
    where: str,
    version: str | None = None,
) -> DatasetView:
    try:
        check_method(method)
    except ValueError as exc:
        raise invalid("method", str(exc), where) from None
    if version is None:
        return state.view(dataset, encoder)
    family = state.workspace.encoder_family(state.require_encoder(encoder))
    if state.workspace.encoder_family(version) != family:
        raise invalid("version", f"{version!r} is not a version of {family!r}", where)
    return state.views.get(dataset, version)


def _stored(
    state: ServerState, view: DatasetView, method: str
) -> tuple[ProjectionInfo, np.ndarray]:
    found = state.layout(view, method)
    if found is None:
        raise not_found(
            f"no {method} projection of {view.dataset!r} under {view.encoder_id!r} is stored "
            "yet; POST /api/projection fits one"
        )
    return found


@router.post("/projection", response_model=ProjectionStatus, responses={**NOT_FOUND, **CONFLICT})
def ensure_projection(body: ProjectionRequest, state: State) -> ProjectionStatus:
    """The stored projection, or a background job fitting it (follow ``/api/jobs/{id}``)."""
    view = _view(state, body.dataset, body.encoder, body.method, "body")
    if not body.refit:
        found = state.layout(view, body.method)
        if found is not None:
            info, coords = found
            return ProjectionStatus(status="ready", projection=_meta(info, len(coords)))
    try:
        job = state.submit_fit(view, body.method)
    except ValueError as exc:  # too few images or texts: say so now, not through a failed job
        raise conflict(str(exc)) from None
    return ProjectionStatus(status="fitting", job=job.info())


@router.get("/projection", response_model=ProjectionMeta, responses=NOT_FOUND)
def get_projection(
    dataset: DatasetQ,
    encoder: EncoderQ,
    state: State,
    method: MethodQ = "mfm",
    version: VersionQ = None,
) -> ProjectionMeta:
    """A stored projection's metadata and quality metrics; 404 when none is stored."""
    view = _view(state, dataset, encoder, method, "query", version)
    info, coords = _stored(state, view, method)
    return _meta(info, len(coords))


@router.get("/projections", response_model=list[ProjectionMeta])
def list_projections(state: State) -> list[ProjectionMeta]:
    """Every stored projection."""
    return [_meta(info) for info in state.workspace.projections()]


@router.get(
    "/projection/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per item."}, **NOT_FOUND},
)
def get_projection_csv(
    dataset: DatasetQ,
    encoder: EncoderQ,
    state: State,
    method: MethodQ = "mfm",
    version: VersionQ = None,
) -> Response:
    """The projection as a CSV download, one row per item (as ``modalchorus export`` writes).

    Columns ``id, kind, dataset, label, text, image_id, source, x, y``; rows in the order of
    ``/api/projection/points``. ``source`` never shows the server's folders: an image
    file's path below the folder holding all of its dataset's files (``val2017/1.jpg``;
    its name alone when they share no folder), as a user holding the dataset finds it.
    ``modalchorus export``, run where the files are, writes absolute paths instead.
    """
    view = _view(state, dataset, encoder, method, "query", version)
    _, coords = _stored(state, view, method)
    # Relative to each dataset's folder, found from all of its items (not only those shown).
    table = layout_table(relative_sources(state.workspace.items()), view.ids, coords)
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{method}-{view.dataset}") + ".csv"
    # Texts a spreadsheet would run as formulas get a leading "'" (csv_safe); said here, not
    # in the docstring, which is the OpenAPI description that web/openapi.json copies.
    return Response(
        csv_safe(table).to_csv(index=False),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/projection/points",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "A points frame."}, **NOT_FOUND},
)
def get_points(
    dataset: DatasetQ,
    encoder: EncoderQ,
    state: State,
    request: Request,
    method: MethodQ = "mfm",
    version: VersionQ = None,
) -> Response:
    """The projection's points as a binary frame (see ``modalchorus.server.frames``).

    Columns, one row per item in view order: ``x``, ``y`` (float32, layout coordinates),
    ``kind`` (uint8: 0 image, 1 caption, 2 concept text), ``label`` and ``predicted``
    (int16 index into ``meta.label_names``, -1 for none), ``pair`` (int32, the row of a
    caption's image, -1 otherwise) and ``id`` (utf8). ``meta`` also names the projection
    and the embedding version shown (``encoder``: the family's active version, or
    ``version`` when given).
    """
    view = _view(state, dataset, encoder, method, "query", version)
    info, coords = _stored(state, view, method)

    def encode() -> tuple[bytes, bytes]:
        frame = _points_frame(view, info, coords, method)
        return frame, gzip.compress(frame, compresslevel=5, mtime=0)

    frame, packed = state.memo.get(("frame", info.name), (info.updated_at, view.stamp), encode)
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=MEDIA_TYPE, headers=headers)
    return Response(frame, media_type=MEDIA_TYPE, headers=headers)


def _points_frame(
    view: DatasetView, info: ProjectionInfo, coords: np.ndarray, method: str
) -> bytes:
    return encode_frame(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "kind": view.kind,
            "label": view.label_codes,
            "predicted": view.predicted,
            "pair": view.pair,
            "id": view.ids,
        },
        {
            "x": "float32",
            "y": "float32",
            "kind": "uint8",
            "label": "int16",
            "predicted": "int16",
            "pair": "int32",
            "id": "utf8",
        },
        meta={
            "projection": info.name,
            "dataset": view.dataset,
            "encoder": view.encoder_id,
            "method": method,
            "label_names": view.label_names,
            "kind_names": list(KIND_NAMES),
            "tasks": view.tasks,
        },
    )
