"""The job table: the bounded record of failures kept for status answers."""

from __future__ import annotations

import concurrent.futures

import pytest

from service.jobs import FAILURES_KEPT, JobManager
from service.store import RunKey


def key(i: int) -> RunKey:
    return RunKey("m", "sha", f"2013-01-01T{i:05d}", 6)


def fail(job) -> None:
    raise ValueError(f"bad input {job.key.run}")


def test_failures_keep_the_latest_errors_up_to_the_bound() -> None:
    jobs = JobManager(workers=1, max_queue=1000)
    submitted = [
        jobs.single_flight(key(i), total_steps=1, cached=lambda: None, compute=fail) for i in range(300)
    ]
    for job in submitted:
        with pytest.raises(ValueError):
            job.future.result(timeout=30)
    concurrent.futures.wait([j.future for j in submitted], timeout=30)
    assert len(jobs.failures) == FAILURES_KEPT
    assert key(0) not in jobs.failures and jobs.failures[key(299)] == f"bad input {key(299).run}"
    again = jobs.single_flight(key(299), total_steps=1, cached=lambda: None, compute=lambda job: 1)
    assert key(299) not in jobs.failures  # submitted again: the old error is dropped
    assert again.future.result(timeout=30) == 1
    jobs.shutdown()
