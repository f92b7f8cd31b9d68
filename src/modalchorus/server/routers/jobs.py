"""Jobs: status of background work, its progress pushed as server-sent events, cancelling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent

from modalchorus.server.errors import conflict, not_found
from modalchorus.server.jobs import FINISHED, Job, JobFinishedError
from modalchorus.server.schemas import JobInfo, Problem
from modalchorus.server.state import ServerState, get_state

router = APIRouter(tags=["jobs"])
State = Annotated[ServerState, Depends(get_state)]
NOT_FOUND = {404: {"model": Problem}}

#: Seconds between checks of a job's state while streaming.
POLL_S = 0.1
#: Seconds between keep-alive comments on a quiet stream.
KEEPALIVE_S = 15.0


def _job(job_id: str, state: State) -> Job:
    """FastAPI dependency: the job ``job_id`` (404 when unknown, before any streaming)."""
    try:
        return state.jobs.get(job_id)
    except KeyError:
        raise not_found(f"unknown job {job_id!r}") from None


@router.get("/jobs", response_model=list[JobInfo])
def list_jobs(state: State) -> list[JobInfo]:
    """Recent jobs, oldest first."""
    return [job.info() for job in state.jobs.jobs()]


@router.get("/jobs/{job_id}", response_model=JobInfo, responses=NOT_FOUND)
def get_job(job: Annotated[Job, Depends(_job)]) -> JobInfo:
    """A job's state."""
    return job.info()


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobInfo,
    responses={**NOT_FOUND, 409: {"model": Problem}},
)
def cancel_job(job: Annotated[Job, Depends(_job)], state: State) -> JobInfo:
    """Ask a queued or running job to stop (409 when it has already finished).

    A queued job is cancelled at once. A running one stops at its next progress report and
    writes nothing: its status turns ``cancelled`` (follow its events). A job that reaches
    its end first finishes as ``done``.
    """
    try:
        return state.jobs.cancel(job.id).info()
    except JobFinishedError as exc:
        raise conflict(str(exc)) from None


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND)
async def job_events(job: Annotated[Job, Depends(_job)]) -> AsyncIterator[ServerSentEvent]:
    """Server-sent ``progress`` events (``JobInfo`` as JSON) until the job finishes.

    The first event is sent at once; the last one has status ``done``, ``failed`` or
    ``cancelled``.
    """
    seen, quiet = -1, 0.0
    while True:
        version = job.version
        if version != seen:
            seen, quiet = version, 0.0
            info = job.info()
            yield ServerSentEvent(data=info, event="progress", id=str(version))
            if info.status in FINISHED:
                return
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ServerSentEvent(comment="keep-alive")
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
