"""The background job queue: one job at a time, shared keys, cooperative cancelling."""

from __future__ import annotations

import threading
import time

import pytest

from modalchorus.server.jobs import JobBusyError, JobFinishedError, JobManager


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def jobs():
    manager = JobManager()
    yield manager
    manager.shutdown()


def test_a_running_job_stops_at_its_next_progress_call(jobs: JobManager) -> None:
    steps: list[int] = []
    release = threading.Event()

    def work(progress) -> str:
        for step in range(1000):
            progress(step / 1000, f"step {step}")
            steps.append(step)
            release.wait()
        return "finished"

    job = jobs.submit("test", "a", work)
    wait_until(lambda: len(steps) == 1)
    jobs.cancel(job.id)
    assert job.status == "running" and job.message.startswith("cancelling")
    release.set()
    wait_until(lambda: job.finished)
    assert job.status == "cancelled" and job.result is None and job.error is None
    assert steps == [0]  # it stopped at the progress call after the first step
    with pytest.raises(JobFinishedError, match="already cancelled"):
        jobs.cancel(job.id)


def test_a_queued_job_is_cancelled_without_running(jobs: JobManager) -> None:
    release = threading.Event()
    first = jobs.submit("test", "first", lambda progress: str(release.wait()))
    ran = []
    second = jobs.submit("test", "second", lambda progress: ran.append(1) or "ran")
    assert second.status == "queued"
    jobs.cancel(second.id)
    assert second.status == "cancelled"
    release.set()
    wait_until(lambda: first.finished)
    time.sleep(0.1)  # the worker has had the chance to pick up the second job
    assert first.status == "done" and second.status == "cancelled" and not ran
    # A new job with the cancelled one's key starts afresh.
    third = jobs.submit("test", "second", lambda progress: "again")
    assert third.id != second.id
    wait_until(lambda: third.finished)
    assert third.result == "again"


def test_cancel_refuses_unknown_and_finished_jobs(jobs: JobManager) -> None:
    with pytest.raises(KeyError):
        jobs.cancel("nope")
    done = jobs.submit("test", "x", lambda progress: "ok")
    wait_until(lambda: done.finished)
    with pytest.raises(JobFinishedError, match="already done"):
        jobs.cancel(done.id)


def test_a_job_being_cancelled_is_not_shared_and_exclusive_keys_are_refused(
    jobs: JobManager,
) -> None:
    release = threading.Event()

    def work(progress) -> str:
        while not release.wait(0.01):
            progress(0.5, "working")
        return "finished"

    first = jobs.submit("test", "key", work)
    wait_until(lambda: first.status == "running")
    assert jobs.submit("test", "key", work) is first  # shared while live
    with pytest.raises(JobBusyError, match="still running") as refused:
        jobs.submit("test", "key", work, exclusive=True)
    assert refused.value.job is first
    jobs.cancel(first.id)
    again = jobs.submit("test", "key", lambda progress: "again")  # not the cancelling one
    assert again is not first
    wait_until(lambda: again.finished)
    assert first.status == "cancelled" and again.result == "again"
    release.set()
