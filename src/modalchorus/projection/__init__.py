"""Joint 2-D projections of image and text embeddings: MFM, baselines, distances, validation.

Heavy back ends (openTSNE, umap-learn, scikit-learn) are imported only when a method runs;
the Modal Fusion Map and the evaluation helpers (which need torch) are imported on first
access (``from modalchorus.projection import ModalFusionMap``).
"""

from __future__ import annotations

import importlib
from typing import Any

from modalchorus.projection.baselines import ProjectionResult, fit_project, list_methods
from modalchorus.projection.distances import (
    BlockNormaliser,
    block_normalised_distances,
    cosine_distances,
    fit_block_normaliser,
)

# name -> submodule, imported lazily (torch is only needed for these).
_LAZY = {
    "ModalFusionMap": "mfm",
    "NotFittedError": "mfm",
    "compare_methods": "evaluate",
    "format_table": "evaluate",
    "measure_transform_throughput": "evaluate",
}

__all__ = [
    "BlockNormaliser",
    "ModalFusionMap",
    "NotFittedError",
    "ProjectionResult",
    "block_normalised_distances",
    "compare_methods",
    "cosine_distances",
    "fit_block_normaliser",
    "fit_project",
    "format_table",
    "list_methods",
    "measure_transform_throughput",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"modalchorus.projection.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'modalchorus.projection' has no attribute {name!r}")
