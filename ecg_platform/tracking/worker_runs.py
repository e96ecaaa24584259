"""MLflow runs in worker processes: the store workers log to, and closing the runs that a dead
worker left RUNNING."""

from __future__ import annotations

import os

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.environment_variables import MLFLOW_RUN_ID, MLFLOW_TRACKING_URI

from ecg_platform.tracking.run_search import RUNNING, child_runs
from ecg_platform.tracking.schema import FAILURE_TAG


def tracking_uri() -> str:
    """The tracking URI this process logs to, for its workers."""
    return mlflow.get_tracking_uri()


def use_tracking_uri(uri: str) -> None:
    """Log to `uri` from this (worker) process; never adopt the run `mlflow run` started."""
    os.environ.pop(MLFLOW_RUN_ID.name, None)
    os.environ[MLFLOW_TRACKING_URI.name] = uri
    mlflow.set_tracking_uri(uri)


def fail_open_children(parent_run_id: str, reason: str) -> list[str]:
    """End the children of `parent_run_id` still RUNNING as FAILED with `reason`; their ids."""
    client = MlflowClient()
    orphans = [run.run_id for run in child_runs(parent_run_id, RUNNING)]
    for run_id in orphans:
        client.set_tag(run_id, FAILURE_TAG, reason)
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
    return orphans
