"""Settings: what the workspace holds and what the views can be set to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from modalchorus.server.projections import DEFAULT_METHOD, methods
from modalchorus.server.schemas import DatasetSummary, Problem, Settings
from modalchorus.server.state import ServerState, get_state
from modalchorus.server.views import UPLOADS, is_upload

router = APIRouter(tags=["settings"])
State = Annotated[ServerState, Depends(get_state)]


def dataset_summary(state: ServerState, name: str) -> DatasetSummary:
    """A dataset's counts, classes and supported tasks (from the first encoder's view).

    Raises
    ------
    UnknownDatasetError
        No dataset ``name`` (answered with 404).
    """
    info = state.workspace.dataset(name)
    encoders = base_encoders(state)
    tasks: list = []
    n_concepts = 0
    if encoders:
        view = state.view(name, encoders[0])
        tasks = list(view.tasks)
        n_concepts = sum(not is_upload(view.ids[row]) for row in view.concept_rows)
    return DatasetSummary(
        name=info.name,
        n_images=info.n_images,
        n_texts=info.n_texts,
        classes=None if info.classes is None else list(info.classes),
        tasks=tasks,
        n_concepts=n_concepts,
    )


def workspace_key(path: str | os.PathLike[str]) -> str:
    """A stable name of the workspace that shows no folder: ``<folder name>-<digest>``.

    The digest (of the resolved path) tells two workspaces of the same name apart, e.g.
    for the settings the browser keeps per workspace.
    """
    resolved = Path(path).resolve()
    digest = hashlib.sha256(resolved.as_posix().encode("utf-8")).hexdigest()[:12]
    return f"{resolved.name}-{digest}"


def base_encoders(state: ServerState) -> list[str]:
    """Embedded encoders that are not aligned versions of another (their families' bases)."""
    workspace = state.workspace
    return [e for e in workspace.embedded_encoders() if workspace.encoder_family(e) == e]


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok"}


@router.get("/settings", response_model=Settings)
def get_settings(state: State) -> Settings:
    """Datasets, encoders and projection methods to choose from.

    The ``uploads`` dataset (user-added items) is not listed: every dataset's view shows
    its items. Encoders are the families' base ids: views show each family's active
    (possibly aligned) version.
    """
    return Settings(
        workspace=workspace_key(state.workspace.path),
        datasets=[
            dataset_summary(state, d.name) for d in state.workspace.datasets() if d.name != UPLOADS
        ],
        encoders=base_encoders(state),
        methods=methods(),
        default_method=DEFAULT_METHOD,
    )


@router.get("/datasets/{name}", response_model=DatasetSummary, responses={404: {"model": Problem}})
def get_dataset(name: str, state: State) -> DatasetSummary:
    """One dataset; 404 when the workspace has no such dataset."""
    return dataset_summary(state, name)
