"""Augmentation: upload images or add texts; they are embedded and placed in the shown map.

New items join the workspace dataset ``uploads`` (shown in every dataset's view) and are
placed in the shown dataset's Modal Fusion Map by its fitted network, without a re-fit;
the extended layout is stored. See :mod:`modalchorus.server.augment`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile, status

from modalchorus.server.augment import (
    MAX_ITEMS_PER_REQUEST,
    MAX_UPLOAD_BYTES,
    Added,
    NotAnUploadError,
    UploadError,
    add_items,
    check_images,
    remove_upload,
)
from modalchorus.server.errors import conflict, invalid
from modalchorus.server.projections import DEFAULT_METHOD, store_layout
from modalchorus.server.routers.sets import set_out
from modalchorus.server.schemas import (
    AddedItem,
    AugmentResult,
    Problem,
    Removed,
    SetOut,
    TextsAdd,
)
from modalchorus.server.state import ServerState, get_state
from modalchorus.server.views import UPLOADS, DatasetView
from modalchorus.store import ItemInUseError
from modalchorus.store.sets import check_set_name

router = APIRouter(tags=["augmentation"])
State = Annotated[ServerState, Depends(get_state)]
ERRORS = {
    404: {"model": Problem, "description": "Unknown dataset or encoder."},
    409: {"model": Problem, "description": "The server's encoder is not the view's."},
    413: {"model": Problem, "description": "A file is over the size limit."},
}


def _set_name(name: str | None) -> str | None:
    """The set name, trimmed and checked as ``POST /api/sets`` checks it (None: no set),
    before anything is written: a 422 naming ``set_name``."""
    if name is None:
        return None
    if not name.strip():
        raise invalid("set_name", "set name must not be blank (leave it out for no set)")
    try:
        return check_set_name(name)
    except ValueError as exc:  # too long, a control character, nothing visible
        raise invalid("set_name", str(exc)) from None


def _checked_view(state: ServerState, dataset: str, encoder: str) -> DatasetView:
    """The view the new items go into; 404 for unknown names, 409 for a foreign encoder."""
    if dataset == UPLOADS:
        raise invalid("dataset", f"choose the dataset to show the items with, not {UPLOADS!r}")
    view = state.view(dataset, encoder)
    state.encoder_for(view.encoder_id)  # 409 when the server cannot embed this version
    return view


def _tag(state: ServerState, name: str | None, ids: list[str]) -> SetOut | None:
    """Create set ``name`` with ``ids``, or add them to the existing set of that name (one
    write: two requests tagging into the same set at once both keep their items)."""
    if name is None:
        return None
    return set_out(state.workspace.add_to_set(name, ids))


def _result(
    state: ServerState, view_dataset: str, encoder: str, added: Added, set_name: str | None
) -> AugmentResult:
    """Place the added items in the view's MFM map (storing the extended layout)."""
    state.views.clear()  # the uploads' embeddings were written after the dataset changed
    view = state.view(view_dataset, encoder)
    found = state.layout(view, DEFAULT_METHOD)
    projection = None
    coords = None
    if found is not None:
        info, coords = found
        if info.n_items != view.n:
            info = store_layout(state.workspace, view, info, coords)
        projection = info.name
    items = []
    rows = zip(added.ids, added.names, added.kinds, added.new, strict=True)
    for item_id, name, kind, new in rows:
        row = view.row.get(item_id)
        x = y = None
        if coords is not None and row is not None:
            x, y = float(coords[row, 0]), float(coords[row, 1])
        items.append(AddedItem(id=item_id, kind=kind, name=name, new=new, x=x, y=y))
    return AugmentResult(
        dataset=UPLOADS,
        view_dataset=view_dataset,
        encoder=view.encoder_id,
        projection=projection,
        items=items,
        n_new=sum(added.new),
        set=_tag(state, set_name, list(dict.fromkeys(added.ids))),
    )


@router.post(
    "/items/upload",
    response_model=AugmentResult,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def upload_images(
    state: State,
    files: Annotated[
        list[UploadFile],
        File(description=f"Images (PNG, JPEG, WebP, GIF, BMP), at most {MAX_ITEMS_PER_REQUEST}."),
    ],
    dataset: Annotated[str, Form(min_length=1, description="The shown dataset.")],
    encoder: Annotated[str, Form(min_length=1, description="The shown encoder.")],
    set_name: Annotated[str | None, Form(description="Tag them into this set.")] = None,
) -> AugmentResult:
    """Add images to the ``uploads`` dataset, embed them and place them in the shown map.

    Every file must be an image that decodes fully, at most 10 MB and 40 megapixels;
    otherwise the answer is 413 (size) or 422 naming the file and the problem, and
    nothing is written. Already stored content is not added twice (``new`` is False).
    """
    name = _set_name(set_name)
    contents = []
    for upload in files:
        filename = upload.filename or "upload"
        contents.append((filename, upload.file.read(MAX_UPLOAD_BYTES + 1)))
    try:
        images = check_images(contents)
    except UploadError as exc:
        if exc.too_large:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None
        raise invalid("files", str(exc)) from None
    view = _checked_view(state, dataset, encoder)  # after the files: 422 / 413, then 404
    added = add_items(state.workspace, state.encoder_for(view.encoder_id), images=images)
    return _result(state, dataset, view.encoder_id, added, name)


@router.post(
    "/items/texts",
    response_model=AugmentResult,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def add_texts(body: TextsAdd, state: State) -> AugmentResult:
    """Add free texts to the ``uploads`` dataset, embed them and place them in the map."""
    name = _set_name(body.set_name)
    view = _checked_view(state, body.dataset, body.encoder)
    added = add_items(state.workspace, state.encoder_for(view.encoder_id), texts=body.texts)
    return _result(state, body.dataset, view.encoder_id, added, name)


@router.delete(
    "/items/{item_id:path}",
    response_model=Removed,
    responses={
        404: {"model": Problem, "description": "Unknown item."},
        409: {"model": Problem, "description": "Not an upload, or still in use."},
    },
)
def remove_item(item_id: str, state: State) -> Removed:
    """Remove an uploaded image or added text (an item of the ``uploads`` dataset).

    Its set memberships go with it. Refused (409, nothing changed) for items of the
    datasets, for items a stored intent names, when a set would be left empty, and while
    a background job (a projection fit or an alignment run) is queued or running: it
    works on every item, this one included, and would fail at its end.
    """

    def no_job() -> None:
        if busy := state.jobs.unfinished():
            job = busy[0]
            raise conflict(
                f"job {job.id} ({job.kind}) is still {job.status} over the items, this one "
                "included: removing it now would make that job fail; try again when it has "
                "finished, or cancel it"
            )

    try:
        removed = remove_upload(state.workspace, item_id, before=no_job)
    except (NotAnUploadError, ItemInUseError) as exc:
        raise conflict(str(exc)) from None
    state.views.clear()
    return Removed(removed=removed)
