"""What the routers share: the workspace, cached views, the concept encoder and the jobs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from fastapi import Request

from modalchorus.align import active_version, version_encoder
from modalchorus.encoders import Encoder, create_encoder
from modalchorus.projecting import check_joint_sizes
from modalchorus.server.cache import Memo
from modalchorus.server.errors import VersionMismatchError
from modalchorus.server.jobs import Job, JobManager, Progress
from modalchorus.server.projections import fit_and_store, projection_name, stored_layout
from modalchorus.server.views import DatasetView, ViewCache
from modalchorus.store import (
    ProjectionInfo,
    UnknownEncoderError,
    UnknownProjectionError,
    Workspace,
)

logger = logging.getLogger(__name__)

#: Encoder the server loads for typed concepts when none is given.
DEFAULT_ENCODER = "pocket"


class EncoderProvider:
    """The encoder for typed concepts, loaded on first use (loading takes seconds).

    Parameters
    ----------
    encoder : Encoder | None
        Use this one; None loads :data:`DEFAULT_ENCODER` on CPU when first needed.
    """

    def __init__(self, encoder: Encoder | None = None) -> None:
        self._encoder = encoder
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the encoder is in memory."""
        return self._encoder is not None

    def get(self) -> Encoder:
        """The encoder (loading it if needed)."""
        with self._lock:
            if self._encoder is None:
                logger.info("loading the %s encoder for concepts", DEFAULT_ENCODER)
                self._encoder = create_encoder(DEFAULT_ENCODER, device="cpu")
            return self._encoder


@dataclass
class ServerState:
    """Shared state of one app.

    Attributes
    ----------
    workspace : Workspace
    views : ViewCache
    encoder : EncoderProvider
    jobs : JobManager
    memo : Memo
        Derived values (layouts, encoded point frames, task metrics) keyed by what they
        were computed from, so reloading a page costs no recomputation.
    """

    workspace: Workspace
    views: ViewCache
    encoder: EncoderProvider
    jobs: JobManager
    memo: Memo = field(default_factory=lambda: Memo(size=32))
    _version_encoders: dict[str, Encoder] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def version(self, encoder_id: str) -> str:
        """The embedding version views of ``encoder_id`` show: its family's active one.

        The settings and the page URL keep the base encoder id; after an alignment run
        (or an undo / redo) every view follows the family's active version.
        """
        return active_version(self.workspace, encoder_id)

    def require_encoder(self, encoder_id: str) -> str:
        """``encoder_id`` (any embedding version) if the workspace holds its embeddings.

        Check it before comparing encoder families: an unknown id is its own family, so
        the comparison would blame the other id.

        Raises
        ------
        UnknownEncoderError
            The workspace holds no embeddings for ``encoder_id`` (a 404 naming it).
        """
        if encoder_id not in self.workspace.embedded_encoders():
            raise UnknownEncoderError(f"workspace has no embeddings for encoder {encoder_id!r}")
        return encoder_id

    def encoder_for(self, version: str) -> Encoder:
        """An encoder that embeds new content as embedding ``version`` does.

        The server's encoder for its own id; for an aligned version of its family, the
        server's encoder with the run's tuned state applied (loaded once, then kept).

        Raises
        ------
        VersionMismatchError
            ``version`` belongs to another encoder family than the server's encoder.
        """
        base = self.encoder.get()
        if version == base.id:
            return base
        if self.workspace.encoder_family(version) != base.id:
            raise VersionMismatchError(
                f"new content is embedded with {base.id!r}, but this view shows "
                f"{version!r} embeddings; choose that encoder"
            )
        with self._lock:
            cached = self._version_encoders.get(version)
        if cached is None:
            cached = version_encoder(self.workspace, version, base)
            with self._lock:
                self._version_encoders[version] = cached
        return cached

    def view(self, dataset: str, encoder_id: str) -> DatasetView:
        """The view of ``dataset`` under the version :meth:`version` resolves ``encoder_id`` to."""
        return self.views.get(dataset, self.version(encoder_id))

    def layout(self, view: DatasetView, method: str) -> tuple[ProjectionInfo, np.ndarray] | None:
        """The stored projection of ``view`` with ``method`` in view row order, or None.

        See :func:`~modalchorus.server.projections.stored_layout`; cached until the
        projection or the view changes.
        """
        name = projection_name(method, view.dataset, view.encoder_id)
        try:
            info = self.workspace.projection_info(name)
        except UnknownProjectionError:
            return None
        return self.memo.get(
            ("layout", name),
            (info.updated_at, view.stamp),
            lambda: stored_layout(self.workspace, view, method),
        )

    def submit_fit(self, view: DatasetView, method: str) -> Job:
        """Fit and store ``method``'s projection of ``view`` as a background job.

        A job for the same projection that is still queued or running is returned instead.

        Raises
        ------
        ValueError
            The view has too few images or texts for a joint map (no job is started).
        """
        check_joint_sizes(view.dataset, view.image_rows.size, view.text_rows.size)
        workspace = self.workspace

        def fit(progress: Progress) -> str:  # runs on the job thread
            return fit_and_store(workspace, view, method, progress).name

        name = projection_name(method, view.dataset, view.encoder_id)
        return self.jobs.submit("fit_projection", name, fit)

    def warm(self, datasets: list[str], encoder_id: str, method: str) -> list[Job]:
        """Start fitting the projections of ``datasets`` that are not stored yet (and can be)."""
        jobs = []
        for dataset in datasets:
            view = self.view(dataset, encoder_id)
            if self.layout(view, method) is None:
                try:
                    jobs.append(self.submit_fit(view, method))
                except ValueError as exc:
                    logger.info("not fitting %s: %s", dataset, exc)
        return jobs


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's :class:`ServerState`."""
    return request.app.state.modalchorus
