"""Items: instance detail, cross-modal neighbours and image thumbnails.

Item ids are looked up in the workspace; nothing here touches the file system.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response

from modalchorus.server.analysis import top_k_similar
from modalchorus.server.errors import invalid, not_found
from modalchorus.server.schemas import (
    MAX_NEIGHBOURS,
    ItemDetail,
    ItemRef,
    Neighbour,
    Neighbours,
    Problem,
)
from modalchorus.server.state import ServerState, get_state
from modalchorus.server.views import KIND_CONCEPT, KIND_IMAGE, UPLOADS, DatasetView, is_upload
from modalchorus.store import THUMBNAIL_MIME, NotFoundError, UnknownItemError

router = APIRouter(tags=["items"])
State = Annotated[ServerState, Depends(get_state)]
NOT_FOUND = {404: {"model": Problem}}
EncoderQ = Annotated[
    str | None, Query(min_length=1, description="Encoder id (default: the first embedded).")
]
DatasetQ = Annotated[
    str | None,
    Query(
        min_length=1,
        description="The shown dataset, whose view the item is looked up in (default: the "
        "item's own dataset). Required for uploaded items, which are in every dataset's view.",
    ),
]


def thumbnail_url(item_id: str) -> str:
    """The thumbnail route of an image item."""
    return f"/api/items/{quote(item_id, safe='')}/thumbnail"


def _encoder(state: ServerState, encoder: str | None) -> str:
    if encoder is not None:
        return encoder
    encoders = state.workspace.embedded_encoders()
    if not encoders:
        raise not_found("the workspace has no embeddings yet")
    return encoders[0]


def dataset_of(state: ServerState, item_id: str) -> str:
    """The dataset an item id belongs to (ids start with ``f"{dataset}/"``); 404 if none."""
    names = [d.name for d in state.workspace.datasets() if item_id.startswith(d.name + "/")]
    if not names:
        raise UnknownItemError(f"unknown item id {item_id!r}")
    return max(names, key=len)


def _ref(view: DatasetView, row: int) -> ItemRef:
    return ItemRef(
        id=view.ids[row],
        kind="image" if view.kind[row] == KIND_IMAGE else "text",
        label=view.labels[row],
        text=view.texts[row],
    )


def _holder(state: ServerState, item_id: str) -> str | None:
    """The dataset holding item ``item_id``, or None when no dataset does."""
    try:
        name = dataset_of(state, item_id)
        return name if item_id in set(state.workspace.items(dataset=name)["id"]) else None
    except NotFoundError:  # no dataset's prefix (or the dataset went meanwhile)
        return None


def _missing(state: ServerState, view: DatasetView, item_id: str) -> Exception:
    """The 404 for an item the view lacks: unknown, of another dataset, or not embedded."""
    holder = _holder(state, item_id)
    if holder is None:
        return not_found(f"unknown item id {item_id!r}")
    if holder not in (view.dataset, UPLOADS):
        return not_found(
            f"item {item_id!r} belongs to dataset {holder!r}, not to the dataset "
            f"{view.dataset!r} asked for"
        )
    return not_found(f"item {item_id!r} has no {view.encoder_id!r} embedding")


def _view_row(
    state: ServerState, item_id: str, encoder: str | None, dataset: str | None = None
) -> tuple[DatasetView, int]:
    if dataset is None and is_upload(item_id):
        if _holder(state, item_id) is None:
            raise not_found(f"unknown item id {item_id!r}")
        raise invalid(
            "dataset", "an added item is shown within a dataset's view: pass dataset", "query"
        )
    view = state.view(dataset or dataset_of(state, item_id), _encoder(state, encoder))
    if item_id not in view.row:
        raise _missing(state, view, item_id)
    return view, view.row[item_id]


@router.get(
    "/items/{item_id:path}/thumbnail",
    response_class=Response,
    responses={
        200: {"content": {THUMBNAIL_MIME: {}}, "description": "JPEG thumbnail."},
        **NOT_FOUND,
    },
)
def get_thumbnail(item_id: str, state: State) -> Response:
    """An image item's stored JPEG thumbnail; 404 for unknown ids and for text items."""
    try:
        data = state.workspace.thumbnail(item_id)
    except ValueError as exc:  # a text item
        raise not_found(str(exc)) from None
    return Response(data, media_type=THUMBNAIL_MIME, headers={"Cache-Control": "max-age=3600"})


@router.get("/items/{item_id:path}/neighbours", response_model=Neighbours, responses=NOT_FOUND)
def get_neighbours(
    item_id: str,
    state: State,
    encoder: EncoderQ = None,
    k: Annotated[int, Query(ge=1, le=MAX_NEIGHBOURS)] = 10,
    dataset: DatasetQ = None,
) -> Neighbours:
    """The ``k`` items of the other modality most cosine-similar to the item (same view)."""
    view, row = _view_row(state, item_id, encoder, dataset)
    candidates = view.text_rows if view.kind[row] == KIND_IMAGE else view.image_rows
    index, sims = top_k_similar(view.vectors[row], view.vectors[candidates], k)
    neighbours = []
    for i, sim in zip(candidates[index].tolist(), sims.tolist(), strict=True):
        ref = _ref(view, i)
        pair = bool(view.pair[i] == row or view.pair[row] == i)
        neighbours.append(Neighbour(**ref.model_dump(), similarity=sim, is_pair=pair))
    return Neighbours(item_id=item_id, encoder=view.encoder_id, k=k, neighbours=neighbours)


@router.get("/items/{item_id:path}", response_model=ItemDetail, responses=NOT_FOUND)
def get_item(
    item_id: str, state: State, encoder: EncoderQ = None, dataset: DatasetQ = None
) -> ItemDetail:
    """One item: its content, label, zero-shot prediction and ground-truth pairs."""
    view, row = _view_row(state, item_id, encoder, dataset)
    is_image = view.kind[row] == KIND_IMAGE
    predicted = None
    if view.predicted[row] >= 0 and view.classes:
        predicted = view.classes[int(view.predicted[row])]
    if is_image:
        related = [_ref(view, i) for i in (view.pair == row).nonzero()[0].tolist()]
    else:
        related = [_ref(view, int(view.pair[row]))] if view.pair[row] >= 0 else []
    return ItemDetail(
        id=item_id,
        kind="image" if is_image else "text",
        dataset=dataset_of(state, item_id),
        label=view.labels[row],
        split=view.splits[row],
        text=view.texts[row],
        image_id=view.ids[int(view.pair[row])] if view.pair[row] >= 0 else None,
        is_concept=bool(view.kind[row] == KIND_CONCEPT),
        thumbnail_url=thumbnail_url(item_id) if is_image else None,
        predicted=predicted,
        related=related,
    )
