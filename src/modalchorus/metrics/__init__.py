"""Projection-quality metrics (neighbourhood preservation within and across modalities)."""

from modalchorus.metrics.neighbourhood import (
    continuity,
    cross_modal_agreement,
    intermodal_continuity,
    intermodal_scores,
    intermodal_trustworthiness,
    metric_sample,
    nearest_concepts,
    projection_report,
    trustworthiness,
)

__all__ = [
    "continuity",
    "cross_modal_agreement",
    "intermodal_continuity",
    "intermodal_scores",
    "intermodal_trustworthiness",
    "metric_sample",
    "nearest_concepts",
    "projection_report",
    "trustworthiness",
]
