"""Sibling runs open at once under one parent: each ends with a status that never lies."""

from __future__ import annotations

import os

import pytest
from mlflow import MlflowClient

from ecg_platform.tracking.run_group import child_runs
from ecg_platform.tracking.runs import stage_run

CHILDREN = {"119": ({}, "grid-search-119"), "233": ({}, "grid-search-233")}


def _status(run_id: str) -> tuple[str, str | None]:
    run = MlflowClient().get_run(run_id)
    return run.info.status, run.data.tags.get("failure_reason")


def test_children_run_together_and_end_finished_or_failed_as_told(mlflow_store: str) -> None:
    with stage_run("grid-search", "all", {}) as parent:
        with child_runs(parent, "grid-search", CHILDREN) as group:
            runs = {key: run.run_id for key, run in group.runs.items()}
            assert {_status(run_id)[0] for run_id in runs.values()} == {"RUNNING"}
            group.end("233", "EcgPlatformError: no setting finished")
        tags = MlflowClient().get_run(runs["119"]).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id
    assert (tags["stage"], tags["patient"], tags["pid"]) == ("grid-search", "119", str(os.getpid()))
    assert _status(runs["119"]) == ("FINISHED", None)
    assert _status(runs["233"]) == ("FAILED", "EcgPlatformError: no setting finished")


@pytest.mark.parametrize(
    ("raised", "status"),
    [(KeyboardInterrupt("interrupted"), "KILLED"), (OSError("disk"), "FAILED")],
)
def test_children_still_open_when_the_block_raises_end_killed_or_failed(
    mlflow_store: str, raised: BaseException, status: str
) -> None:
    with (
        pytest.raises(type(raised)),
        stage_run("grid-search", "all", {}) as parent,
        child_runs(parent, "grid-search", CHILDREN) as group,
    ):
        runs = [run.run_id for run in group.runs.values()]
        raise raised
    assert {_status(run_id) for run_id in runs} == {(status, f"{type(raised).__name__}: {raised}")}
