"""Plain result records returned by the workspace store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modalchorus.data.types import SkippedItem


@dataclass(frozen=True)
class DatasetInfo:
    """Dataset-level metadata of one dataset held in a workspace.

    Attributes
    ----------
    name : str
        Dataset name; item ids of the dataset start with ``f"{name}/"``.
    classes : tuple[str, ...] | None
        Ordered class names for classification datasets, else None.
    n_images : int
        Image items of the dataset currently in the workspace.
    n_texts : int
        Text (caption) items of the dataset currently in the workspace.
    skipped : tuple[SkippedItem, ...]
        What the loader skipped on the most recent ``add_dataset``.
    added_at, updated_at : str
        ISO-8601 UTC timestamps of the first and the most recent ``add_dataset``.
    """

    name: str
    classes: tuple[str, ...] | None
    n_images: int
    n_texts: int
    skipped: tuple[SkippedItem, ...]
    added_at: str
    updated_at: str

    @property
    def n_skipped(self) -> int:
        """Number of entries the loader skipped."""
        return len(self.skipped)


@dataclass(frozen=True)
class AddResult:
    """Outcome of ``Workspace.add_dataset``.

    Counts are over all items written for the dataset (images and caption texts).

    Attributes
    ----------
    dataset : str
        Dataset name.
    added : int
        Items whose id was not in the workspace before.
    updated : int
        Items whose id existed but whose content or metadata changed (rewritten).
    unchanged : int
        Items identical to what was stored (not rewritten, images not decoded).
    n_images, n_texts : int
        Image and text items of the dataset after the call.
    n_skipped : int
        Entries the loader skipped.
    """

    dataset: str
    added: int
    updated: int
    unchanged: int
    n_images: int
    n_texts: int
    n_skipped: int


@dataclass(frozen=True)
class PutResult:
    """Outcome of ``Workspace.put_embeddings``.

    Attributes
    ----------
    encoder_id : str
        Encoder the vectors belong to.
    dim : int
        Embedding dimension ``d`` of that encoder.
    n_items : int
        Item ids in the call.
    items_written : int
        Item -> content-hash assignments that were new or changed.
    vectors_written : int
        Cache entries (one per distinct content hash) that were new or changed.
    """

    encoder_id: str
    dim: int
    n_items: int
    items_written: int
    vectors_written: int


@dataclass(frozen=True)
class ProjectionInfo:
    """Metadata of one stored projection (a 2-D layout of items under one encoder).

    Attributes
    ----------
    name : str
        Unique name chosen by the caller, e.g. ``"mfm:<dataset>:<encoder-id-digest>"``.
    encoder_id : str
        Encoder whose embeddings were projected.
    method : str
        Projection method, e.g. ``"mfm"``, ``"umap"``.
    params : dict[str, Any]
        Method parameters (JSON object, as stored).
    metrics : dict[str, Any]
        Quality metrics of the layout (JSON object, as stored).
    n_items : int
        Number of projected items ``n`` (rows of the coordinates).
    model_files : tuple[str, ...]
        Names of the stored model files, sorted (see ``Workspace.projection_model_files``).
    created_at, updated_at : str
        ISO-8601 UTC timestamps of the first and the most recent ``put_projection``.
    """

    name: str
    encoder_id: str
    method: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    n_items: int
    model_files: tuple[str, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class SetInfo:
    """A named selection of items.

    Attributes
    ----------
    id : int
        Set id, assigned by the workspace (never reused after ``delete_set``).
    name : str
        Unique name (trimmed, 1-100 characters).
    item_ids : list[str]
        Member item ids, unique, in the order given when they were last set.
    color : str | None
        Display colour chosen by the caller (e.g. ``"#e45756"``), or None.
    description : str
        Free text, possibly empty.
    created_at, updated_at : str
        ISO-8601 UTC timestamps of creation and of the most recent change.
    """

    id: int
    name: str
    item_ids: list[str]
    color: str | None
    description: str
    created_at: str
    updated_at: str

    @property
    def n_items(self) -> int:
        """Number of member items."""
        return len(self.item_ids)


@dataclass(frozen=True)
class IntentInfo:
    """A stored alignment intent.

    Attributes
    ----------
    id : int
        Intent id, assigned by the workspace.
    spec : dict[str, Any]
        The intent as a JSON object (see ``modalchorus.align.intent_to_dict``).
    created_at : str
        ISO-8601 UTC timestamp.
    """

    id: int
    spec: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class RunInfo:
    """A recorded alignment run: the embedding version it produced and how.

    Attributes
    ----------
    id : int
        Run id, assigned by the workspace.
    parent_run_id : int | None
        Run whose version this one was tuned from; None when tuned from the base encoder.
    base_encoder_id : str
        The encoder family's base id (an encoder the registry can create).
    parent_encoder_id, encoder_id : str
        Embedding version before and after the run.
    scope : str
        What was tuned: ``"adapter"``, ``"lora"`` or ``"last-blocks"``.
    intents : list[dict[str, Any]]
        The intents as JSON objects, with set references resolved to item ids.
    params : dict[str, Any]
        Tuner hyper-parameters.
    metrics_before, metrics_after : dict[str, Any]
        ``{dataset: task metrics}`` of the parent and the new version.
    moved : list[dict[str, Any]]
        Points that moved most in 2-D (``item_id``, ``dataset``, ``distance``), largest first.
    seconds : float
        Wall time of the run.
    created_at : str
        ISO-8601 UTC timestamp.
    active : bool
        Whether this run's version is the family's current one.
    """

    id: int
    parent_run_id: int | None
    base_encoder_id: str
    parent_encoder_id: str
    encoder_id: str
    scope: str
    intents: list[dict[str, Any]]
    params: dict[str, Any]
    metrics_before: dict[str, Any]
    metrics_after: dict[str, Any]
    moved: list[dict[str, Any]]
    seconds: float
    created_at: str
    active: bool
