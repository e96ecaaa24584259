"""The executor in this process and in spawned workers: results, failure isolation, dead
workers run once more, worker logs in the parent's."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.runs import stage_run
from ecg_platform.workflows.executor import DEAD_WORKER, Job, LocalPoolExecutor


def _square(number: int) -> int:
    return number * number


def _fail_in_a_run(parent_run_id: str) -> None:
    with stage_run("individual", "119", {}, run_name="raises", parent_run_id=parent_run_id):
        raise ValueError("this setting diverged")


def _die_in_a_run(parent_run_id: str) -> None:
    with stage_run("individual", "233", {}, run_name="dies", parent_run_id=parent_run_id):
        os._exit(3)  # the worker process dies with its run open


def _runs_under(parent_run_id: str) -> list[Run]:
    client = MlflowClient()
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent_run_id}'")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_that_raises_is_reported_and_the_others_finish(
    mlflow_store: str, workers: int
) -> None:
    with stage_run("individual", "all", {}) as parent, LocalPoolExecutor(workers) as executor:
        jobs = [
            Job("two", _square, 2),
            Job("raises", _fail_in_a_run, parent.run_id, parent.run_id),
            Job("three", _square, 3),
        ]
        results = executor.run(jobs, "test")
    assert list(results) == ["two", "raises", "three"]
    assert [results[name].value for name in ("two", "three")] == [4, 9]
    assert results["raises"].error == "ValueError: this setting diverged"
    assert results["raises"].value is None
    assert all(result.seconds >= 0 for result in results.values())
    (failed,) = _runs_under(parent.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure_reason"] == "ValueError: this setting diverged"


def test_a_worker_that_dies_twice_fails_the_job_its_runs_end_failed_and_a_fresh_pool_goes_on(
    mlflow_store: str,
) -> None:
    with stage_run("individual", "all", {}) as parent, LocalPoolExecutor(2) as executor:
        dead = executor.run([Job("dies", _die_in_a_run, parent.run_id, parent.run_id)], "test")
        after = executor.run([Job("four", _square, 4), Job("five", _square, 5)], "test")
    assert str(dead["dies"].error).startswith(f"{DEAD_WORKER}: ")
    assert [result.value for result in after.values()] == [16, 25]
    attempts = [run for run in _runs_under(parent.run_id) if run.info.run_name == "dies"]
    assert len(attempts) == 2  # run once more before it counts as failed
    assert {run.info.status for run in attempts} == {"FAILED"}
    assert {run.data.tags["failure_reason"] for run in attempts} == {DEAD_WORKER}
    assert MlflowClient().get_run(parent.run_id).info.status == "FINISHED"


def _die_the_first_time(marker_and_parent: tuple[str, str]) -> str:
    """Dies (with a run open) unless the marker file exists, which it creates first."""
    marker, parent_run_id = marker_and_parent
    first = not os.path.exists(marker)
    Path(marker).touch()
    with stage_run("individual", "233", {}, run_name="flaky", parent_run_id=parent_run_id):
        if first:
            os._exit(9)
    return "second attempt"


def test_a_job_whose_worker_died_once_is_run_again_and_finishes(
    mlflow_store: str, tmp_path: Path
) -> None:
    with stage_run("individual", "all", {}) as parent, LocalPoolExecutor(2) as executor:
        flaky = (str(tmp_path / "died-once"), parent.run_id)
        jobs = [Job("flaky", _die_the_first_time, flaky, parent.run_id), Job("six", _square, 6)]
        results = executor.run(jobs, "test")
    assert results["flaky"].value == "second attempt"
    assert results["six"].value == 36
    statuses = sorted(run.info.status for run in _runs_under(parent.run_id))
    assert statuses == ["FAILED", "FINISHED"]  # the dead attempt's run never stays RUNNING


def _spurious_error_the_first_time(marker: str) -> str:
    """CPython 3.11.7's error (python/cpython#106905) once, then the job's own result."""
    if not Path(marker).exists():
        Path(marker).touch()
        raise SystemError("AST constructor recursion depth mismatch (before=39, after=35)")
    return "second attempt"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_hit_by_cpythons_spurious_error_runs_once_more(workers: int, tmp_path: Path) -> None:
    with LocalPoolExecutor(workers) as executor:
        jobs = [Job("flaky", _spurious_error_the_first_time, str(tmp_path / "hit-once"))]
        jobs.append(Job("other SystemError", _raise, SystemError("a real one")))
        results = executor.run(jobs, "test")
    assert results["flaky"].value == "second attempt"
    assert results["other SystemError"].error == "SystemError: a real one"  # not retried


def _raise(error: Exception) -> None:
    raise error


def _warn_and_fail(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=1)
    raise RuntimeError("a bug in a worker")


def test_worker_warnings_and_tracebacks_reach_the_parents_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with LocalPoolExecutor(2) as executor, caplog.at_level(logging.WARNING):
        (result,) = executor.run([Job("noisy", _warn_and_fail, "mind the gap")], "test").values()
    assert result.error == "RuntimeError: a bug in a worker"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "[noisy] WARNING py.warnings:" in logged and "mind the gap" in logged
    assert "[noisy] WARNING ecg_platform.workflows.executor: job noisy failed" in logged
    assert "Traceback (most recent call last)" in logged
    assert "RuntimeError: a bug in a worker" in logged


def test_at_least_one_worker() -> None:
    with pytest.raises(EcgPlatformError, match="workers must be at least 1, not 0"):
        LocalPoolExecutor(0)
