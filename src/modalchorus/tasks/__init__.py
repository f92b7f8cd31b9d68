"""Task metrics computed from embeddings: zero-shot classification and cross-modal retrieval."""

from modalchorus.tasks.classification import (
    DEFAULT_TEMPLATES,
    class_prompts,
    zero_shot_report,
)
from modalchorus.tasks.retrieval import recall_at_k, retrieval_report

__all__ = [
    "DEFAULT_TEMPLATES",
    "class_prompts",
    "recall_at_k",
    "retrieval_report",
    "zero_shot_report",
]
