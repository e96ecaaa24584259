"""The executor in this process and in spawned workers: results, failure isolation, dead workers."""

from __future__ import annotations

import os

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


def _children(parent_run_id: str) -> dict[str, Run]:
    client = MlflowClient()
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return {run.info.run_name: run for run in runs}


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
    (failed,) = _children(parent.run_id).values()
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure_reason"] == "ValueError: this setting diverged"


def test_a_dead_worker_leaves_its_run_failed_and_the_next_jobs_get_a_fresh_pool(
    mlflow_store: str,
) -> None:
    with stage_run("individual", "all", {}) as parent, LocalPoolExecutor(2) as executor:
        dead = executor.run([Job("dies", _die_in_a_run, parent.run_id, parent.run_id)], "test")
        after = executor.run([Job("four", _square, 4), Job("five", _square, 5)], "test")
    assert str(dead["dies"].error).startswith(f"{DEAD_WORKER}: ")
    assert [result.value for result in after.values()] == [16, 25]
    (orphan,) = _children(parent.run_id).values()
    assert orphan.info.status == "FAILED"
    assert orphan.data.tags["failure_reason"] == DEAD_WORKER
    assert MlflowClient().get_run(parent.run_id).info.status == "FINISHED"


def test_at_least_one_worker() -> None:
    with pytest.raises(EcgPlatformError, match="workers must be at least 1, not 0"):
        LocalPoolExecutor(0)
