"""Alignment for the HTTP API: intents, runs as background jobs, history, export.

The math and the bookkeeping are :mod:`modalchorus.align`'s; this module checks requests
before anything starts (so bad intents are a 422, unknown ids a 404, never a failed job),
submits runs to the job queue and converts records to response models.
"""

from __future__ import annotations

import contextlib
import io
import logging
import zipfile
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from modalchorus.align import (
    AlignmentTuner,
    Intent,
    IntentError,
    active_version,
    intent_from_dict,
    resolve_intents,
    run_alignment,
)
from modalchorus.encoders import Encoder
from modalchorus.server.augment import embed_uploads
from modalchorus.server.errors import VersionMismatchError
from modalchorus.server.jobs import Job, JobBusyError, Progress
from modalchorus.server.schemas import (
    AlignmentHistory,
    AlignmentRunRequest,
    IntentOut,
    IntentSpec,
    RunOut,
)
from modalchorus.server.state import ServerState
from modalchorus.store import (
    IntentInfo,
    RunInfo,
    UnknownEncoderError,
    UnknownIntentError,
    Workspace,
)

logger = logging.getLogger(__name__)

#: Scopes that tune the encoder's towers (they need the base encoder in memory).
TOWER_SCOPES = ("lora", "last-blocks")

_spec = TypeAdapter(IntentSpec)


class TunerParamsError(ValueError):
    """A run request's ``params`` are not valid tuner hyper-parameters."""


class RepeatedIntentError(ValueError):
    """A run request's ``intent_ids`` name a stored intent more than once."""


def intent_out(info: IntentInfo) -> IntentOut:
    """The API form of a stored intent."""
    return IntentOut(id=info.id, spec=_spec.validate_python(info.spec), created_at=info.created_at)


def run_out(info: RunInfo) -> RunOut:
    """The API form of a recorded run."""
    return RunOut(
        id=info.id,
        parent_run_id=info.parent_run_id,
        base_encoder_id=info.base_encoder_id,
        parent_encoder_id=info.parent_encoder_id,
        encoder_id=info.encoder_id,
        scope=info.scope,
        intents=info.intents,
        params=info.params,
        metrics_before=info.metrics_before,
        metrics_after=info.metrics_after,
        moved=info.moved,  # type: ignore[arg-type]  (validated into MovedPoint)
        seconds=info.seconds,
        created_at=info.created_at,
        active=info.active,
    )


def history(workspace: Workspace, encoder_id: str) -> AlignmentHistory:
    """Runs of ``encoder_id``'s family and its active version, with undo / redo states."""
    base = workspace.encoder_family(encoder_id)
    runs = workspace.alignment_runs(base)
    active = next((r for r in runs if r.active), None)
    current = None if active is None else active.id
    return AlignmentHistory(
        base_encoder_id=base,
        active_encoder_id=active_version(workspace, base),
        active_run_id=current,
        can_undo=active is not None,
        can_redo=any(r.parent_run_id == current for r in runs),
        runs=[run_out(r) for r in runs],
    )


def check_intent(workspace: Workspace, spec: dict[str, Any]) -> Intent:
    """Parse an intent and check that its items and sets exist.

    Raises
    ------
    IntentError
        Malformed, empty or conflicting sets.
    UnknownIntentItemError
        Item ids the workspace does not hold (an ``IntentError`` too).
    UnknownSetError
        A set id or name the workspace does not hold.
    """
    intent = intent_from_dict(spec)
    known = set(workspace.items()["id"])
    resolve_intents(workspace, [intent], known, labels=["the intent"])
    return intent


def _stored_intents(workspace: Workspace, ids: Sequence[int]) -> list[Intent]:
    stored = {info.id: info for info in workspace.intents()}
    intents = []
    for intent_id in ids:
        if intent_id not in stored:
            raise UnknownIntentError(f"workspace has no intent {intent_id}")
        intents.append(intent_from_dict(stored[intent_id].spec))
    return intents


def _embedded_ids(workspace: Workspace, version: str) -> set[str]:
    if version not in workspace.embedded_encoders():
        raise UnknownEncoderError(f"workspace has no embeddings for encoder {version!r}")
    return set(workspace.get_embeddings(version)[0])


def prepare_run(
    state: ServerState, body: AlignmentRunRequest
) -> tuple[str, list[Intent], Encoder | None]:
    """Check a run request completely before it is queued.

    Returns
    -------
    base : str
        The encoder family's base id.
    intents : list[Intent]
        Stored intents (in ``intent_ids`` order), then the inline ones.
    encoder : Encoder | None
        The base encoder, for tower scopes.

    Raises
    ------
    RepeatedIntentError
        ``intent_ids`` names an intent twice.
    IntentError
        No intents, malformed or unrunnable intents.
    TunerParamsError
        Unknown or out-of-range tuner parameters.
    UnknownIntentError, UnknownSetError, UnknownEncoderError, UnknownIntentItemError
        Unknown ids (404; the last is an ``IntentError`` too).
    VersionMismatchError
        A tower scope, but the server's encoder is not the family's base (409).
    """
    workspace = state.workspace
    # What the request alone shows wrong (422) first, then what the workspace lacks (404).
    if repeated := [i for i, n in Counter(body.intent_ids).items() if n > 1]:
        raise RepeatedIntentError(
            f"intent_ids names stored intent #{repeated[0]} more than once: it would count "
            "that many times in the run; name each intent once"
        )
    inline = [intent_from_dict(spec.model_dump()) for spec in body.intents]
    if not body.intent_ids and not inline:
        raise IntentError("no intents given: add an intent or pass intent_ids")
    params = body.params or {}
    allowed = [name for name in AlignmentTuner().get_params() if name != "scope"]
    if unknown := [name for name in params if name not in allowed]:
        raise TunerParamsError(
            f"unknown tuner parameter {unknown[0]!r}; use any of {', '.join(allowed)}"
        )
    try:
        AlignmentTuner(body.scope, **params).validate()
    except ValueError as exc:
        raise TunerParamsError(str(exc)) from None
    intents = _stored_intents(workspace, body.intent_ids) + inline
    labels = [f"stored intent #{i}" for i in body.intent_ids]
    labels += [f"intent {n}" for n in range(1, len(body.intents) + 1)]
    base = workspace.encoder_family(body.encoder)
    known = _embedded_ids(workspace, active_version(workspace, base))
    resolve_intents(workspace, intents, known, labels)
    encoder = None
    if body.scope in TOWER_SCOPES:
        encoder = state.encoder.get()
        if encoder.id != base:
            raise VersionMismatchError(
                f"the {body.scope} scope tunes the towers of {base!r}, but the server's "
                f"encoder is {encoder.id!r}"
            )
    return base, intents, encoder


def submit_run(state: ServerState, body: AlignmentRunRequest) -> Job:
    """Check the request (see :func:`prepare_run`), then run it as a background job.

    The job's result is the new run's id; views follow the new active version afterwards.

    Raises
    ------
    JobBusyError
        A run of the same family is still queued or running (one at a time: each run
        starts from the version the previous one made).
    """
    base, intents, encoder = prepare_run(state, body)

    def work(progress: Progress) -> str:  # runs on the job thread
        try:
            info = run_alignment(
                state.workspace,
                intents,
                encoder_id=base,
                scope=body.scope,
                params=body.params,
                encoder=encoder,
                progress=progress,
            )
            _embed_uploads(state, info.encoder_id)  # items uploaded during the run
        finally:
            state.views.clear()
        return str(info.id)

    return state.jobs.submit("alignment", run_key(base), work, exclusive=True)


def run_key(base: str) -> str:
    """The job key of an alignment run of the family ``base`` (one at a time)."""
    return f"alignment:{base}"


def step(state: ServerState, encoder_id: str, direction: str) -> RunInfo | None:
    """Undo or redo in ``encoder_id``'s family; uploads get embeddings of the new version.

    Uploaded items added while another version was current are embedded for the version
    that becomes current (they are then placed in its map like any upload).

    Raises
    ------
    JobBusyError
        A run of the family is queued or running (not being cancelled): it tunes from the
        current version, so stepping now would make it fail at its end, its work lost.
    """
    workspace = state.workspace
    base = workspace.encoder_family(encoder_id)
    if base not in workspace.embedded_encoders():
        raise UnknownEncoderError(f"workspace has no embeddings for encoder {base!r}")
    if (job := state.jobs.live(run_key(base))) is not None:
        raise JobBusyError(f"job {job.id} ({job.key}) is still {job.status}", job)
    run = workspace.step_alignment(base, direction)
    if run is not None:
        _embed_uploads(state, active_version(workspace, base))
    state.views.clear()
    return run


def _embed_uploads(state: ServerState, version: str) -> None:
    """Embed uploads that lack a ``version`` embedding (the server's family only).

    The step is committed already: an upload that cannot be embedded (its file is gone)
    is logged and left without a vector of ``version``, rather than failing the answer."""
    with contextlib.suppress(VersionMismatchError):
        try:
            embed_uploads(state.workspace, state.encoder_for(version))
        except (OSError, ValueError):
            logger.warning("uploads not embedded for %s", version, exc_info=True)


def export_zip(workspace: Workspace, run_id: int) -> bytes:
    """A zip of the run's ``alignment.json`` and ``alignment.safetensors``.

    Unpacked into a folder, ``create_encoder(f"aligned:{folder}")`` loads the aligned
    encoder. Raises ``UnknownRunError`` for an unknown run.
    """
    files = workspace.alignment_run_files(run_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    return buffer.getvalue()
