"""Background jobs with progress: long work runs off the request threads.

A :class:`JobManager` runs submitted functions one at a time on a worker thread (fits are
CPU-bound; two at once would only slow both down). A function receives a ``progress``
callable and returns a short result string. Jobs with the same ``key`` that are still
queued or running (and not being cancelled) are shared, so a page reload does not start a
second fit; an *exclusive* submission is refused instead (:class:`JobBusyError`).

A job's messages and error are sent to clients: they pass through the manager's
``redact`` (:func:`~modalchorus.server.redact.redact_paths` by default), so an exception's
text does not show the server's folders.

Cancelling is cooperative: a queued job never starts, and a running one stops at its next
``progress`` call, which raises :class:`JobCancelled` on the job thread. The work must
therefore write nothing it would have to undo before its last ``progress`` call; the fits and
alignment runs commit once, at the end.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from modalchorus.server.redact import redact_paths
from modalchorus.server.schemas import JobInfo

logger = logging.getLogger(__name__)

#: ``progress(fraction in [0, 1], message)``.
Progress = Callable[[float, str], None]
JobFunction = Callable[[Progress], str]

#: Finished jobs kept for status queries.
_KEEP_FINISHED = 200
#: Statuses after which a job never changes again.
FINISHED = ("done", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised by a job's ``progress`` callable once the job has been asked to stop."""


class JobFinishedError(ValueError):
    """A finished job cannot be cancelled."""


class JobBusyError(RuntimeError):
    """An exclusive submission met a live job with the same key (:attr:`job`)."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


@dataclass
class Job:
    """One job's mutable state (read it with :meth:`info`)."""

    id: str
    kind: str
    key: str
    status: str = "queued"
    progress: float = 0.0
    message: str = "queued"
    error: str | None = None
    result: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        """Done, failed or cancelled."""
        return self.status in FINISHED

    @property
    def cancel_requested(self) -> bool:
        """Whether :meth:`JobManager.cancel` was called for this job."""
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        """Flag the job to stop (see :meth:`JobManager.cancel`); checked and set atomically.

        Raises
        ------
        JobFinishedError
            The job is already done, failed or cancelled.
        """
        with self._lock:
            if self.status in FINISHED:
                raise JobFinishedError(f"job {self.id} is already {self.status}")
            self._cancel.set()
            if self.status == "queued":
                self._set(status="cancelled", message="cancelled before it started")
            elif not self.message.startswith("cancelling"):
                self._set(message=f"cancelling ({self.message})")

    def start(self) -> bool:
        """Mark the job running, unless it was cancelled while queued (then False)."""
        with self._lock:
            if self._cancel.is_set():
                return False
            self._set(status="running", message="started")
            return True

    def update(self, **changes: object) -> None:
        """Set fields, bump :attr:`version` and the timestamp."""
        with self._lock:
            self._set(**changes)

    def _set(self, **changes: object) -> None:
        """:meth:`update` for callers that hold the lock."""
        for name, value in changes.items():
            setattr(self, name, value)
        self.updated_at = time.time()
        self.version += 1

    def info(self) -> JobInfo:
        """A consistent snapshot."""
        with self._lock:
            return JobInfo(
                id=self.id,
                kind=self.kind,
                status=self.status,  # type: ignore[arg-type]
                progress=min(max(self.progress, 0.0), 1.0),
                message=self.message,
                error=self.error,
                result=self.result,
                created_at=self.created_at,
                updated_at=self.updated_at,
            )


class JobManager:
    """Runs jobs on one worker thread and keeps their state.

    Parameters
    ----------
    redact : Callable[[str], str]
        Applied to every progress message and error before it is stored (and sent): the
        server's folders must not reach clients (:mod:`modalchorus.server.redact`).
    """

    def __init__(self, redact: Callable[[str], str] = redact_paths) -> None:
        self._redact = redact
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modalchorus-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, key: str, function: JobFunction, *, exclusive: bool = False) -> Job:
        """Queue ``function`` unless a live job with the same ``key`` is queued or running.

        A job whose cancel was requested is not live: submitting again queues a new one.

        Parameters
        ----------
        kind : str
            E.g. ``"fit_projection"``.
        key : str
            Identity of the work (e.g. the projection name).
        function : JobFunction
            Called with a progress callable; its return value becomes ``result``.
        exclusive : bool
            Refuse (rather than share) when a live job has the same key: for work whose
            request carries more than its key (e.g. an alignment run's intents).

        Returns
        -------
        Job
            The new job, or the live one with the same key.

        Raises
        ------
        JobBusyError
            ``exclusive`` and a live job has the same key.
        """
        with self._lock:
            if (live := self._live(key)) is not None:
                if exclusive:
                    raise JobBusyError(f"job {live.id} ({key}) is still {live.status}", live)
                return live
            job = Job(id=uuid.uuid4().hex, kind=kind, key=key)
            self._jobs[job.id] = job
            self._forget_old()
        self._executor.submit(self._run, job, function)
        return job

    def live(self, key: str) -> Job | None:
        """The queued or running job with ``key`` whose cancel was not requested, if any."""
        with self._lock:
            return self._live(key)

    def _live(self, key: str) -> Job | None:
        jobs = self._jobs.values()
        return next(
            (j for j in jobs if j.key == key and not j.finished and not j.cancel_requested), None
        )

    def unfinished(self) -> list[Job]:
        """Queued or running jobs (a cancelled one runs until its next progress report)."""
        with self._lock:
            return [job for job in self._jobs.values() if not job.finished]

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; raises ``KeyError`` when there is none."""
        with self._lock:
            return self._jobs[job_id]

    def cancel(self, job_id: str) -> Job:
        """Ask the job ``job_id`` to stop.

        A queued job is marked cancelled at once; a running one stops at its next progress
        report (its status turns ``cancelled`` then). Asking twice is harmless.

        Raises
        ------
        KeyError
            No such job.
        JobFinishedError
            The job is already done, failed or cancelled.
        """
        job = self.get(job_id)
        job.request_cancel()
        return job

    def jobs(self) -> list[Job]:
        """Every kept job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def shutdown(self) -> None:
        """Stop accepting jobs; queued ones are dropped, a running one finishes."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job, function: JobFunction) -> None:
        if not job.start():  # cancelled while queued
            return

        def progress(fraction: float, message: str) -> None:
            if job.cancel_requested:
                raise JobCancelled(job.id)
            job.update(progress=float(fraction), message=self._public(message))

        try:
            result = function(progress)
        except JobCancelled:
            logger.info("job %s (%s) cancelled", job.id, job.key)
            job.update(status="cancelled", message="cancelled")
        except Exception as exc:  # reported to the client; the server keeps running
            logger.exception("job %s (%s) failed", job.id, job.key)
            error = self._public(f"{type(exc).__name__}: {exc}")
            job.update(status="failed", error=error, message="failed")
        else:
            job.update(status="done", progress=1.0, result=result, message="done")

    def _public(self, text: str) -> str:
        """``text`` redacted; a fixed text if redacting fails (never the raw text)."""
        try:
            return self._redact(text)
        except Exception:  # the job's own outcome matters more than its message
            logger.exception("could not redact a job message")
            return "(not shown: the message could not be checked for server paths)"

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished]
        for job in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self._jobs[job.id]
