"""Finding runs across every experiment by their tags, reading back what they logged, and the
finished run a new one would repeat (to reuse it instead).

Runs are found by tags, never by experiment: a stage's runs live in its own experiment, in the
experiment `mlflow run --experiment-name` chose, or nested under a `reproduce` run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ecg_platform.errors import EcgPlatformError

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
RUNNING = RunStatus.to_string(RunStatus.RUNNING)
PAGE_SIZE = 1000


@dataclass(frozen=True)
class RunRecord:
    """One run as the workflows need it: ids, status, tags, params and final metric values."""

    run_id: str
    status: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def _record(run: Run) -> RunRecord:
    return RunRecord(
        run.info.run_id,
        run.info.status,
        run.info.start_time,
        dict(run.data.tags),
        dict(run.data.params),
        dict(run.data.metrics),
    )


def _quoted(value: str) -> str:
    if "'" in value:
        raise EcgPlatformError(f"cannot search runs for a value with a quote: {value!r}")
    return f"'{value}'"


def find_runs(tags: Mapping[str, str], status: str | None = FINISHED) -> list[RunRecord]:
    """Runs of any active experiment whose tags equal `tags` (and of `status`), newest first."""
    client = MlflowClient()
    experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    conditions = [f"tags.`{key}` = {_quoted(value)}" for key, value in tags.items()]
    if status is not None:
        conditions.append(f"attributes.status = {_quoted(status)}")
    runs: list[RunRecord] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id for experiment in experiments],
            " and ".join(conditions),
            max_results=PAGE_SIZE,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs += [_record(run) for run in page]
        token = page.token
        if not token:
            return runs


def latest_run(tags: Mapping[str, str], status: str | None = FINISHED) -> RunRecord | None:
    """The newest run with these tags (and status), or None."""
    runs = find_runs(tags, status)
    return runs[0] if runs else None


def child_runs(parent_run_id: str, status: str | None = None) -> list[RunRecord]:
    """The runs nested directly under `parent_run_id`, newest first."""
    return find_runs({MLFLOW_PARENT_RUN_ID: parent_run_id}, status)


def get_run(run_id: str) -> RunRecord:
    """One run by id; a one-line error naming it when the store has no such run."""
    try:
        return _record(MlflowClient().get_run(run_id))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise EcgPlatformError(f"no run {run_id} in {mlflow.get_tracking_uri()}") from None


def metric_histories(run_id: str, keys: Iterable[str]) -> dict[str, dict[int, float]]:
    """Each metric's values by step (the last value logged at a step wins)."""
    client = MlflowClient()
    return {
        key: {metric.step: metric.value for metric in client.get_metric_history(run_id, key)}
        for key in keys
    }


def find_finished_run(
    tags: Mapping[str, str],
    params: Mapping[str, object],
    among: Sequence[RunRecord] | None = None,
) -> RunRecord | None:
    """The newest FINISHED run with these tags that logged these params, or None: the run that
    a new one with them would repeat (the lookup of `_get_or_run` in MLflow's multistep example).

    `among`: runs found before (newest first), searched instead of the store, so that one
    `find_runs` serves the look-ups of many jobs.
    """
    candidates = find_runs(tags) if among is None else among
    return next(
        (
            run
            for run in candidates
            if run.status == FINISHED
            and all(run.tags.get(key) == value for key, value in tags.items())
            and _has_params(run, params)
        ),
        None,
    )


def _has_params(run: RunRecord, params: Mapping[str, object]) -> bool:
    """Whether the run logged every one of `params` with the same value (compared as text)."""
    return all(run.params.get(key) == str(value) for key, value in params.items())


def artifact_json(run_id: str, path: str) -> dict | None:
    """A run's JSON artifact as a dict, or None when the run has no such file."""
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
    except MlflowException:
        return None
