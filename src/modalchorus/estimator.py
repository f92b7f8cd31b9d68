"""What the project's scikit-learn-style estimators share (``ModalFusionMap``,
``AlignmentTuner``): their tags and how a failed fit is undone."""

from __future__ import annotations

from typing import Any


class UnsupervisedEstimator:
    """Mixin: scikit-learn tags of an estimator fitted without a target, and
    :meth:`_forget_fit`, which returns it to unfitted."""

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags: fitted without a target."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    def _forget_fit(self) -> None:
        """Drop every fitted attribute (the names ending in ``_``): back to unfitted."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            delattr(self, name)
