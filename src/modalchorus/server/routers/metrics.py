"""Metrics panel: task metrics from stored embeddings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from modalchorus.evaluation import workspace_task_metrics
from modalchorus.server.schemas import Problem, TaskMetrics
from modalchorus.server.state import ServerState, get_state

router = APIRouter(tags=["metrics"])
State = Annotated[ServerState, Depends(get_state)]


@router.get("/metrics/task", response_model=TaskMetrics, responses={404: {"model": Problem}})
def get_task_metrics(
    dataset: Annotated[str, Query(min_length=1)],
    encoder: Annotated[str, Query(min_length=1)],
    state: State,
) -> TaskMetrics:
    """Zero-shot accuracy with its confusion matrix, or retrieval Recall@k.

    (The projection's inter-modal trustworthiness / continuity come with the projection:
    ``GET /api/projection``.)
    """
    view = state.view(dataset, encoder)  # 404 for an unknown dataset or encoder
    version = view.encoder_id
    return state.memo.get(
        ("task", dataset, version), view.stamp, lambda: _task_metrics(state, dataset, version)
    )


def _task_metrics(state: ServerState, dataset: str, encoder: str) -> TaskMetrics:
    report = workspace_task_metrics(state.workspace, encoder, dataset)
    task = report.get("task")
    if task == "zero-shot classification":
        per_class = report["per_class_accuracy"]
        return TaskMetrics(
            task=task,
            dataset=dataset,
            encoder=encoder,
            n=report["n"],
            accuracy=report["accuracy"],
            classes=list(per_class),
            per_class_accuracy={c: (None if a != a else a) for c, a in per_class.items()},
            confusion=report["confusion"],
        )
    if task == "cross-modal retrieval":
        recall = {k: float(v) for k, v in report.items() if "R@" in k}
        return TaskMetrics(
            task="retrieval", dataset=dataset, encoder=encoder, n=report["n_texts"], recall=recall
        )
    return TaskMetrics(task=None, dataset=dataset, encoder=encoder)
