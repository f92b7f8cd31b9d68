"""Alignment: intents (stored, listable, removable), runs as jobs, history with undo / redo.

A run tunes the encoder family's active version toward intents, re-embeds every item,
re-places every stored Modal Fusion Map of the parent version in the same 2-D frame and
makes the new version active: from then on every view of the family shows it. The
parent's layout stays readable for the before/after toggle through
``GET /api/projection/points?...&version=<parent_encoder_id>``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response, status

from modalchorus.align import IntentError
from modalchorus.server.alignment import (
    RepeatedIntentError,
    TunerParamsError,
    check_intent,
    export_zip,
    history,
    intent_out,
    run_out,
    step,
    submit_run,
)
from modalchorus.server.errors import conflict, invalid
from modalchorus.server.jobs import JobBusyError
from modalchorus.server.schemas import (
    AlignmentHistory,
    AlignmentRunRequest,
    AlignmentStep,
    EncoderRef,
    IntentOut,
    IntentSpec,
    JobInfo,
    Problem,
    RunOut,
)
from modalchorus.server.state import ServerState, get_state
from modalchorus.store import DuplicateIntentError, NotFoundError

router = APIRouter(tags=["alignment"])
State = Annotated[ServerState, Depends(get_state)]
NOT_FOUND = {404: {"model": Problem}}
EncoderQ = Annotated[str, Query(min_length=1, description="Any version id of the family.")]


@router.get("/intents", response_model=list[IntentOut])
def list_intents(state: State) -> list[IntentOut]:
    """Every stored intent, oldest first."""
    return [intent_out(info) for info in state.workspace.intents()]


@router.post(
    "/intents",
    response_model=IntentOut,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 409: {"model": Problem}},
)
def create_intent(spec: Annotated[IntentSpec, Body()], state: State) -> IntentOut:
    """Store an intent; 422 says what is wrong with it, 404 names an unknown set or item,
    409 names the stored intent it repeats (with its defaults filled in, it would count
    twice in a run)."""
    try:
        check_intent(state.workspace, spec.model_dump())
    except IntentError as exc:
        if isinstance(exc, NotFoundError):
            raise  # unknown item ids: a 404, as for unknown sets
        raise invalid(None, str(exc)) from None  # the body is the intent
    # Stored as given: a reference by set id or name follows the set's members.
    try:
        return intent_out(state.workspace.create_intent(spec.model_dump()))
    except DuplicateIntentError as exc:
        raise conflict(str(exc)) from None
    except ValueError as exc:  # too large to store
        raise invalid(None, str(exc)) from None  # the body is the intent


@router.delete(
    "/intents/{intent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
def delete_intent(intent_id: int, state: State) -> Response:
    """Delete a stored intent."""
    state.workspace.delete_intent(intent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/alignment/runs",
    response_model=JobInfo,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: {"model": Problem}},
)
def start_run(body: AlignmentRunRequest, state: State) -> JobInfo:
    """Start an alignment run as a background job (follow ``/api/jobs/{id}/events``).

    Everything is checked first: bad intents or parameters (an intent id named twice
    included) are a 422, unknown intent ids, sets, items or encoders a 404, a run of the
    family still going a 409. The finished job's ``result`` is the new run's id.
    """
    try:
        job = submit_run(state, body)
    except RepeatedIntentError as exc:
        raise invalid("intent_ids", str(exc)) from None
    except IntentError as exc:
        if isinstance(exc, NotFoundError):
            raise  # unknown item ids: a 404, as for unknown sets
        raise invalid("intents", str(exc)) from None
    except TunerParamsError as exc:
        raise invalid("params", str(exc)) from None
    except JobBusyError as exc:
        raise _busy(exc) from None
    return job.info()


def _busy(exc: JobBusyError) -> Exception:
    return conflict(
        f"an alignment run of this encoder is still {exc.job.status} (job {exc.job.id}): "
        "wait for it to finish or cancel it"
    )


@router.get("/alignment/runs", response_model=AlignmentHistory, responses=NOT_FOUND)
def get_history(encoder: EncoderQ, state: State) -> AlignmentHistory:
    """The family's runs (oldest first), its active version and whether undo / redo apply."""
    return history(state.workspace, state.require_encoder(encoder))


@router.get("/alignment/runs/{run_id}", response_model=RunOut, responses=NOT_FOUND)
def get_run(run_id: int, state: State) -> RunOut:
    """One run: its intents, metrics before / after and the points that moved most."""
    return run_out(state.workspace.alignment_run(run_id))


@router.get(
    "/alignment/runs/{run_id}/export",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "alignment.json + .safetensors"},
        **NOT_FOUND,
    },
)
def export(run_id: int, state: State) -> Response:
    """The run's tuned state as a zip: unpack it and load it with ``aligned:<folder>``."""
    data = export_zip(state.workspace, run_id)
    headers = {"Content-Disposition": f'attachment; filename="alignment-run-{run_id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


def _step(state: ServerState, encoder: str, direction: str) -> AlignmentStep:
    try:
        run = step(state, state.require_encoder(encoder), direction)
    except JobBusyError as exc:
        raise _busy(exc) from None
    return AlignmentStep(
        run=None if run is None else run_out(run), history=history(state.workspace, encoder)
    )


STEP_ERRORS = {**NOT_FOUND, 409: {"model": Problem}}


@router.post("/alignment/undo", response_model=AlignmentStep, responses=STEP_ERRORS)
def undo(body: EncoderRef, state: State) -> AlignmentStep:
    """Make the active run's parent version current (``run`` is None when at the base).

    409 while a run of the family is queued or running (it would fail at its end).
    """
    return _step(state, body.encoder, "undo")


@router.post("/alignment/redo", response_model=AlignmentStep, responses=STEP_ERRORS)
def redo(body: EncoderRef, state: State) -> AlignmentStep:
    """Make the newest run tuned from the current version current (None: nothing to redo).

    409 while a run of the family is queued or running.
    """
    return _step(state, body.encoder, "redo")
