"""MLflow runs in worker processes: the store workers log to, and closing the runs that a dead
process left RUNNING (a dead worker's, found under its job's parent run; a killed command's,
found by the `host` and `pid` tags every run carries)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.environment_variables import MLFLOW_RUN_ID, MLFLOW_TRACKING_URI

from ecg_platform.tracking.run_search import RUNNING, RunRecord, child_runs, find_runs
from ecg_platform.tracking.schema import FAILURE_TAG, HOST_TAG, PID_TAG

PROCESS_GONE = "its process died without ending the run (pid {pid} on {host})"
DRIVER_ONLY_SCHEMES = frozenset({"", "file", "sqlite"})
START_TIME_SLACK_S = 2.0  # a process started this long after the run began is not its writer
EXITED_STATES = frozenset("ZX")  # /proc/PID/stat states of a process that has ended


def tracking_uri() -> str:
    """The tracking URI this process logs to, for its workers."""
    return mlflow.get_tracking_uri()


def use_tracking_uri(uri: str) -> None:
    """Log to `uri` from this (worker) process; never adopt the run `mlflow run` started."""
    os.environ.pop(MLFLOW_RUN_ID.name, None)
    os.environ[MLFLOW_TRACKING_URI.name] = uri
    mlflow.set_tracking_uri(uri)


def driver_only_store(uri: str) -> bool:
    """Whether the store behind `uri` is a file of this machine (a SQLite file, `./mlruns`),
    which the workers of a cluster's other machines cannot reach."""
    return urlsplit(uri).scheme.split("+")[0] in DRIVER_ONLY_SCHEMES


def fail_open_children(parent_run_id: str, reason: str) -> list[str]:
    """End the children of `parent_run_id` still RUNNING as FAILED with `reason`; their ids."""
    orphans = [run.run_id for run in child_runs(parent_run_id, RUNNING)]
    for run_id in orphans:
        _end_failed(run_id, reason)
    return orphans


def fail_runs_of_dead_processes() -> list[str]:
    """End FAILED every RUNNING run written on this host by a process that no longer runs (a
    command or worker killed with -9, or a machine that lost power); their ids. Runs of other
    hosts are left alone: their processes cannot be checked from here."""
    host = socket.gethostname()
    dead = [run for run in find_runs({HOST_TAG: host}, RUNNING) if not _writer_alive(run)]
    for run in dead:
        _end_failed(run.run_id, PROCESS_GONE.format(pid=run.tags.get(PID_TAG), host=host))
    return [run.run_id for run in dead]


def _end_failed(run_id: str, reason: str) -> None:
    client = MlflowClient()
    client.set_tag(run_id, FAILURE_TAG, reason)
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))


def _writer_alive(run: RunRecord) -> bool:
    """Whether the process named by the run's `pid` tag still runs and is the one that started
    the run: not a zombie (exited, not yet reaped: a killed command's workers until the init
    process gets to them) nor a later process that was given the same pid."""
    pid = int(run.tags.get(PID_TAG, "0") or 0)
    if pid <= 0:
        return True  # written before the tag existed, or by another tool: not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    status = _process_status(pid)
    if status is None:
        return True
    state, started = status
    return state not in EXITED_STATES and started <= run.start_time / 1000 + START_TIME_SLACK_S


def _process_status(pid: int) -> tuple[str, float] | None:
    """The process's state letter and start as a Unix time (Linux /proc), or None where they
    cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
