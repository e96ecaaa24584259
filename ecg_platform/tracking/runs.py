"""MLflow runs: one experiment per stage, standard tags, and an end status that never lies.

A run started by `mlflow run` (MLFLOW_RUN_ID set) is adopted rather than duplicated; its
experiment is the one `mlflow run` chose (`--experiment-name`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.environment_variables import MLFLOW_RUN_ID
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.time import get_current_time_millis

from ecg_platform.tracking.schema import (
    FAILURE_TAG,
    GIT_COMMIT_TAG,
    HOST_TAG,
    PATIENT_TAG,
    PID_TAG,
    STAGE_TAG,
    TRACKING,
    Stage,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_EXPERIMENT_ID = "0"
_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
_DEFAULT_EXPERIMENT_HINT = (
    "this run is in the Default experiment; `mlflow run --experiment-name %s` files it by stage"
)
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedRun:
    """One MLflow run, addressed by id so nested runs never log into the wrong one."""

    run_id: str
    experiment_id: str

    @property
    def client(self) -> MlflowClient:
        """A client for the current tracking URI."""
        return MlflowClient()

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values become strings)."""
        batch = [Param(key, str(value)) for key, value in params.items()]
        self.client.log_batch(self.run_id, params=batch)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log numeric metrics in one call, all at the same step."""
        now = get_current_time_millis()
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (values become strings)."""
        batch = [RunTag(key, str(value)) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=batch)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        """Store a dict as a JSON/YAML artifact (by the file's extension)."""
        self.client.log_dict(self.run_id, dict(data), artifact_file)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """Store a matplotlib figure as an image artifact."""
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        """Upload one local file as an artifact."""
        self.client.log_artifact(self.run_id, str(path), artifact_dir)


@functools.cache
def git_commit() -> str:
    """The commit of the code being run, or `unknown` outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def standard_tags(stage: Stage, patient: str) -> dict[str, str]:
    """The tags every run carries: its stage, patient, code, and the host and process writing it
    (so that a later command can end it FAILED should that process die without closing it)."""
    return {
        STAGE_TAG: stage,
        PATIENT_TAG: patient,
        GIT_COMMIT_TAG: git_commit(),
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
    }


@contextlib.contextmanager
def stage_run(
    stage: Stage,
    patient: str,
    tags: Mapping[str, str],
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    system_metrics: bool = False,
    reopen_run_id: str | None = None,
) -> Iterator[TrackedRun]:
    """Start a run of `stage` (nested under the active run if asked, or under `parent_run_id`,
    a running run of any process, in its experiment) and always end it.

    `reopen_run_id`: continue that ended run instead (RUNNING again, the new tags and parent
    set), to resume an interrupted training into its own run. Under `mlflow run`, which made
    the run of this command, the command's run is used all the same.

    The run ends FINISHED, KILLED (Ctrl-C or SIGTERM) or FAILED (any other exception, whose
    message is kept in the `failure_reason` tag). It carries the `standard_tags`.
    `system_metrics` samples CPU and memory (psutil) for runs long enough to be worth it:
    pretraining and `reproduce`.
    """
    parent = mlflow.active_run()
    if parent_run_id:
        nested, experiment_id = True, MlflowClient().get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = parent.info.experiment_id if nested and parent else _stage_experiment(stage)
    all_tags = standard_tags(stage, patient) | dict(tags)
    run_id = (
        _reopenable(reopen_run_id, experiment_id) if nested or not MLFLOW_RUN_ID.get() else None
    )
    if run_id and parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id  # start_run re-parents no reopened run
    with _interrupts_handled():
        active = mlflow.start_run(
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=run_name,
            nested=nested,
            parent_run_id=parent_run_id,
            tags=all_tags,
            log_system_metrics=system_metrics,
        )
        run = TrackedRun(active.info.run_id, active.info.experiment_id)
        try:
            yield run
        except BaseException as exc:
            _end_run(run, exc)
            raise
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def _reopenable(run_id: str | None, experiment_id: str) -> str | None:
    """`run_id` if that run belongs to `experiment_id` (MLflow reopens a run only there), its
    `failure_reason` dropped: the run goes on."""
    if not run_id:
        return None
    client = MlflowClient()
    run = client.get_run(run_id)
    if run.info.experiment_id != experiment_id:
        return None
    if FAILURE_TAG in run.data.tags:
        client.delete_tag(run_id, FAILURE_TAG)
    return run_id


def _stage_experiment(stage: Stage) -> str:
    """Activate the stage's experiment, or the experiment of the run `mlflow run` started."""
    name = TRACKING.experiment(stage)
    if launched_run_id := MLFLOW_RUN_ID.get():
        experiment_id = MlflowClient().get_run(launched_run_id).info.experiment_id
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            _logger.warning(_DEFAULT_EXPERIMENT_HINT, name)
        return mlflow.set_experiment(experiment_id=experiment_id).experiment_id
    return mlflow.set_experiment(name).experiment_id


def _end_run(run: TrackedRun, exc: BaseException) -> None:
    """Record why the run stopped and end it KILLED or FAILED, immune to further signals."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    status = RunStatus.KILLED if interrupted else RunStatus.FAILED
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    with _signals_ignored():
        run.set_tags({FAILURE_TAG: reason[:5000]})
        mlflow.end_run(RunStatus.to_string(status))


def _interrupt(signum: int, _frame: Any) -> None:
    """Raise KeyboardInterrupt once; ignore further SIGINT/SIGTERM while runs are closed."""
    for sig in _INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _interrupts_handled() -> Iterator[None]:
    """Around the outermost run: Ctrl-C and SIGTERM raise KeyboardInterrupt (runs end KILLED)."""
    if not _on_main_thread() or signal.getsignal(signal.SIGTERM) is _interrupt:
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in _INTERRUPTS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while a run is being closed (e.g. `mlflow run` cancelling us)."""
    if not _on_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _INTERRUPTS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
