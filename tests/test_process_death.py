"""kill -9 of a real command with two workers: no worker outlives it, and the next command ends
the runs it left RUNNING as FAILED, also while their processes are unreaped zombies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from ecg_platform.tracking.schema import HOST_TAG, PID_TAG
from ecg_platform.tracking.worker_runs import fail_runs_of_dead_processes

DEADLINE_S = 180.0


def _platform(*args: str, cwd: Path, uri: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "ecg-platform"), *args],
        cwd=cwd,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _runs(uri: str) -> list[Run]:
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(condition, what: str, timeout: float = DEADLINE_S):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if found := condition():
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill_9_leaves_no_worker_alive_and_the_next_command_ends_its_runs_failed(
    excerpt_dir: Path, tmp_path: Path, empty_store_uri: str
) -> None:
    uri = empty_store_uri
    args = ["individual", "--patient", "all", "--workers", "2", "--data-dir", str(excerpt_dir)]
    args += ["--cache-dir", str(tmp_path / "cache"), "--epochs", "500", "--early-stopping", "false"]
    command = _platform(*args, cwd=tmp_path, uri=uri)
    try:

        def two_workers_training() -> set[int]:
            assert command.poll() is None, command.stdout.read()
            running = [run for run in _runs(uri) if run.info.status == "RUNNING"]
            pids = {int(run.data.tags["pid"]) for run in running} - {command.pid}
            return pids if len(pids) == 2 else set()

        workers = _wait_for(two_workers_training, "two worker runs")
    finally:
        command.send_signal(signal.SIGKILL)
        command.communicate(timeout=30)

    try:
        _wait_for(lambda: not any(map(_alive, workers)), "the workers to die", timeout=15)
    finally:
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)  # a failed check leaves no orphan behind
    orphaned = {run.info.run_id for run in _runs(uri) if run.info.status == "RUNNING"}
    assert len(orphaned) == 3  # the parent and the two patients' runs

    finetune = ["finetune", "--patient", "233", "--data-dir", str(excerpt_dir)]
    output = _platform(*finetune, cwd=tmp_path, uri=uri).communicate(timeout=120)[0]
    assert "ended FAILED 3 run(s) whose process had died" in output
    ended = {run.info.run_id: run for run in _runs(uri) if run.info.run_id in orphaned}
    assert {run.info.status for run in ended.values()} == {"FAILED"}
    for run in ended.values():
        reason = run.data.tags["failure_reason"]
        assert reason.startswith(
            f"its process died without ending the run (pid {run.data.tags['pid']}"
        )


def test_a_run_whose_process_is_an_unreaped_zombie_is_ended_and_a_live_ones_is_not(
    mlflow_store: str,
) -> None:
    # A killed command's workers are zombies until the init process reaps them; on one VM the
    # next command took such a zombie for its run's writer and left that run RUNNING.
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _wait_for(lambda: not _alive(zombie.pid), "the child to exit")
        assert Path(f"/proc/{zombie.pid}").exists()  # exited, not reaped: a zombie
        client = MlflowClient()
        experiment = client.create_experiment("orphans")
        tags = {HOST_TAG: socket.gethostname()}
        run_of = {
            process.pid: client.create_run(experiment, tags={**tags, PID_TAG: str(process.pid)})
            for process in (zombie, live)
        }
        assert fail_runs_of_dead_processes() == [run_of[zombie.pid].info.run_id]
        assert client.get_run(run_of[live.pid].info.run_id).info.status == "RUNNING"
    finally:
        live.kill()
        live.wait()
        zombie.wait()
