"""Runs: stage experiments, tags, adopting `mlflow run`'s run, and honest end statuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import FAILURE_TAG


def test_run_lands_in_its_stage_experiment_with_standard_tags(mlflow_store: str) -> None:
    with stage_run("individual", patient="105", tags={"data_config_hash": "abc"}) as run:
        run.log_params({"train.lr": 0.001})
        run.log_metrics({"val_loss": 0.5}, step=3)
    stored = MlflowClient().get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert MlflowClient().get_experiment(run.experiment_id).name == "ecg-individual"
    assert {"stage": "individual", "patient": "105", "data_config_hash": "abc"}.items() <= (
        stored.data.tags.items()
    )
    assert len(stored.data.tags["git_commit"]) == 40
    assert stored.data.params["train.lr"] == "0.001"
    history = MlflowClient().get_metric_history(run.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(3, 0.5)]


def test_nested_runs_share_the_parent_experiment(mlflow_store: str) -> None:
    with (
        stage_run("finetune", patient="all", tags={}) as parent,
        stage_run("finetune", patient="105", tags={}, nested=True) as child,
    ):
        pass
    stored = MlflowClient().get_run(child.run_id)
    assert stored.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child.experiment_id == parent.experiment_id


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("disk full"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_exceptions_end_the_run_failed_or_killed(
    mlflow_store: str, error: BaseException, status: str
) -> None:
    with pytest.raises(type(error)), stage_run("pretrain", patient="all", tags={}) as run:
        raise error
    stored = MlflowClient().get_run(run.run_id)
    assert stored.info.status == status
    assert stored.data.tags[FAILURE_TAG].startswith(type(error).__name__)
    assert mlflow.active_run() is None


def test_a_run_started_by_mlflow_run_is_adopted(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id = MlflowClient().create_experiment("launched-here")
    launched = MlflowClient().create_run(experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", launched.info.run_id)
    with stage_run("pretrain", patient="all", tags={}) as run:
        pass
    assert (run.run_id, run.experiment_id) == (launched.info.run_id, experiment_id)
    assert MlflowClient().get_run(run.run_id).info.status == "FINISHED"


SLEEPER = """
import sys, time
from ecg_platform.tracking.runs import stage_run
with stage_run("pretrain", patient="all", tags={}) as run:
    print(run.run_id, flush=True)
    time.sleep(60)
"""


def test_sigterm_ends_the_run_killed(mlflow_store: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SLEEPER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_store},
    )
    run_id = process.stdout.readline().strip()
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    assert time.monotonic() - started < 30
    stored = MlflowClient().get_run(run_id)
    assert stored.info.status == "KILLED"
    assert "SIGTERM" in stored.data.tags[FAILURE_TAG]
