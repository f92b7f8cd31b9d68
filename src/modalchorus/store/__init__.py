"""Workspace persistence: items, thumbnails, embeddings, projections and sets.

A workspace is a directory: LanceDB tables for bulk data (items with thumbnails,
per-encoder embedding vectors, projection coordinates and model files) and a SQLite
catalog (``workspace.sqlite``) for small transactional state (dataset metadata, encoder
registry, projection metadata, sets) and the commit pointer. Every public write is atomic; see
:mod:`modalchorus.store.transaction`.

Examples
--------
>>> ws = Workspace.open_or_create("my-workspace")            # doctest: +SKIP
>>> ws.add_dataset(dataset)                                  # doctest: +SKIP
>>> hits = ws.cached_vectors(encoder.id, hashes)             # doctest: +SKIP
>>> ws.put_embeddings(encoder.id, ids, hashes, vectors)      # doctest: +SKIP
>>> ids, vectors = ws.get_embeddings(encoder.id, kind="image")  # doctest: +SKIP
>>> ws.put_projection(name, encoder.id, ids, coords, method="mfm",
...                   params={}, metrics={})                  # doctest: +SKIP
>>> cats = ws.create_set("cats", ids[:10], color="#e45756")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modalchorus.store.errors import (
    DuplicateIntentError,
    IncompatibleWorkspaceError,
    ItemInUseError,
    NotAWorkspaceError,
    NotFoundError,
    SetInUseError,
    UnknownDatasetError,
    UnknownEncoderError,
    UnknownIntentError,
    UnknownItemError,
    UnknownProjectionError,
    UnknownRunError,
    UnknownSetError,
    WorkspaceError,
    WorkspaceExistsError,
    WorkspaceLockedError,
)
from modalchorus.store.items import image_item_id, text_hash, text_item_id
from modalchorus.store.records import (
    AddResult,
    DatasetInfo,
    IntentInfo,
    ProjectionInfo,
    PutResult,
    RunInfo,
    SetInfo,
)
from modalchorus.store.schema import SCHEMA_VERSION
from modalchorus.store.thumbnails import THUMBNAIL_MIME

if TYPE_CHECKING:
    from modalchorus.store.workspace import Workspace

__all__ = [
    "SCHEMA_VERSION",
    "THUMBNAIL_MIME",
    "AddResult",
    "DatasetInfo",
    "IntentInfo",
    "DuplicateIntentError",
    "IncompatibleWorkspaceError",
    "ItemInUseError",
    "SetInUseError",
    "NotAWorkspaceError",
    "NotFoundError",
    "ProjectionInfo",
    "PutResult",
    "RunInfo",
    "SetInfo",
    "UnknownDatasetError",
    "UnknownEncoderError",
    "UnknownIntentError",
    "UnknownItemError",
    "UnknownProjectionError",
    "UnknownRunError",
    "UnknownSetError",
    "Workspace",
    "WorkspaceError",
    "WorkspaceExistsError",
    "WorkspaceLockedError",
    "image_item_id",
    "text_hash",
    "text_item_id",
]


def __getattr__(name: str) -> Any:
    # The workspace imports LanceDB (~1.3 s); loading it on first use keeps the CLI's
    # start-up (help, argument errors) fast.
    if name == "Workspace":
        from modalchorus.store.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'modalchorus.store' has no attribute {name!r}")
