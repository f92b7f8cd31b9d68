"""Joint 2-D projections of image and text embeddings: baselines, distances, validation.

Heavy back ends (openTSNE, umap-learn, scikit-learn) are imported only when a method runs.
"""

from modalchorus.projection.baselines import ProjectionResult, fit_project, list_methods
from modalchorus.projection.distances import (
    BlockNormaliser,
    block_normalised_distances,
    cosine_distances,
    fit_block_normaliser,
)

__all__ = [
    "BlockNormaliser",
    "ProjectionResult",
    "block_normalised_distances",
    "cosine_distances",
    "fit_block_normaliser",
    "fit_project",
    "list_methods",
]
