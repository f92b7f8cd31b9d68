"""Alignment: intents -> tune -> re-embed -> re-project in the same frame (DESIGN §7).

Examples
--------
>>> from modalchorus.align import PointSet, run_alignment          # doctest: +SKIP
>>> run = run_alignment(ws, [PointSet("cifar10/img/12", target="cat prompts")],
...                     encoder_id="pocket")                       # doctest: +SKIP
>>> run.metrics_before["cifar10"]["accuracy"], run.metrics_after["cifar10"]["accuracy"]
... # doctest: +SKIP
"""

from modalchorus.align.intents import (
    Intent,
    IntentError,
    PointSet,
    SetSet,
    intent_from_dict,
    intent_to_dict,
    resolve_intents,
)
from modalchorus.align.runs import (
    active_version,
    export_run,
    redo_alignment,
    run_alignment,
    undo_alignment,
    version_encoder,
)
from modalchorus.align.state import AlignedEncoder, AlignmentState
from modalchorus.align.tuner import SCOPES, AlignmentTuner
from modalchorus.store import RunInfo

__all__ = [
    "SCOPES",
    "AlignedEncoder",
    "AlignmentState",
    "AlignmentTuner",
    "Intent",
    "IntentError",
    "PointSet",
    "RunInfo",
    "SetSet",
    "active_version",
    "export_run",
    "intent_from_dict",
    "intent_to_dict",
    "redo_alignment",
    "resolve_intents",
    "run_alignment",
    "undo_alignment",
    "version_encoder",
]
