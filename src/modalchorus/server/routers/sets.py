"""Sets: named selections of items (e.g. from a lasso), persisted in the workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from modalchorus.server.errors import conflict, invalid
from modalchorus.server.schemas import Problem, SetCreate, SetOut, SetRename
from modalchorus.server.state import ServerState, get_state
from modalchorus.store import SetInfo

router = APIRouter(tags=["sets"])
State = Annotated[ServerState, Depends(get_state)]
NOT_FOUND = {404: {"model": Problem}}


def set_out(info: SetInfo) -> SetOut:
    """The API form of a stored set."""
    return SetOut(
        id=info.id,
        name=info.name,
        item_ids=info.item_ids,
        n_items=info.n_items,
        color=info.color,
        description=info.description,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def _name_error(exc: ValueError) -> Exception:
    message = str(exc)
    if "already exists" in message:
        return conflict(message)
    return invalid("name", message)


@router.get("/sets", response_model=list[SetOut])
def list_sets(state: State) -> list[SetOut]:
    """Every set, oldest first."""
    return [set_out(info) for info in state.workspace.sets()]


@router.post(
    "/sets",
    response_model=SetOut,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 409: {"model": Problem}},
)
def create_set(body: SetCreate, state: State) -> SetOut:
    """Create a set; 404 names unknown item ids (the first few, and why), 409 a taken name."""
    try:
        info = state.workspace.create_set(
            body.name, body.item_ids, color=body.color, description=body.description
        )
    except ValueError as exc:
        raise _name_error(exc) from None
    return set_out(info)


@router.get("/sets/{set_id}", response_model=SetOut, responses=NOT_FOUND)
def get_set(set_id: int, state: State) -> SetOut:
    """One set."""
    return set_out(state.workspace.get_set(set_id))


@router.patch(
    "/sets/{set_id}", response_model=SetOut, responses={**NOT_FOUND, 409: {"model": Problem}}
)
def rename_set(set_id: int, body: SetRename, state: State) -> SetOut:
    """Rename a set (stored intents that name it follow); 409 when another set has the name.

    Its own name again changes nothing (``updated_at`` included).
    """
    try:
        info = state.workspace.rename_set(set_id, body.name)
    except ValueError as exc:
        raise _name_error(exc) from None
    return set_out(info)


@router.delete(
    "/sets/{set_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**NOT_FOUND, 409: {"model": Problem}},
)
def delete_set(set_id: int, state: State) -> Response:
    """Delete a set; 409 (nothing changed) while a stored intent names it."""
    state.workspace.delete_set(set_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
