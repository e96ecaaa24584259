"""The Ray executor on a real cluster of this machine (a head and a second node process, both on
127.0.0.1, logging to a real tracking server): the same results as the local pool, a worker
killed mid-job, the refusals, and Ray left unimported unless asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Run
from ray_cluster import local_ray_cluster
from test_tracking_server import server  # noqa: F401 - a real mlflow server, as a fixture

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.workflows.executor import DEAD_WORKER
from ecg_platform.workflows.executor_spec import ExecutorSpec
from ecg_platform.workflows.grid_search import run_grid_search
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS, GridSpec

PATIENTS = ("119", "233")
GRID = GridSpec(batch_sizes=(32,), lrs=(0.01, 0.001), weighted_sampling=(True,))
KILL_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A head and one more node process on 127.0.0.1, one CPU each."""
    with local_ray_cluster(nodes=2, cpus_per_node=1) as address:
        yield address


def _all_runs() -> list[Run]:
    client = MlflowClient()
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _grid_request(excerpt_dir: Path, cache: Path, patients: tuple[str, ...], epochs: int):
    return StageRequest(
        "grid-search",
        DataSource(excerpt_dir, cache, data_config("paper")),
        PatientSelection(patients),
        train=PATIENT_DEFAULTS.replace(epochs=epochs, early_stopping=False),
    )


def _reproduce(excerpt_dir: Path, out: Path, *executor: str) -> None:
    args = ["reproduce", "--data-dir", excerpt_dir, "--cache-dir", out / "cache", "--out", out]
    args += ["--patient", ",".join(PATIENTS), "--epochs", 1, "--pretrain-epochs", 1, *executor]
    result = CliRunner().invoke(cli, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output


def _use_local_store(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder.mkdir()
    monkeypatch.chdir(folder)
    uri = f"sqlite:///{folder}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


@pytest.mark.slow
def test_a_two_node_cluster_gives_the_local_pools_test_metrics(
    ray_address: str,
    server: str,  # noqa: F811
    excerpt_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _reproduce(excerpt_dir, tmp_path / "ray", "--executor", "ray", "--ray-address", ray_address)
    writers = {int(run.data.tags["pid"]) for run in _all_runs()} - {os.getpid()}
    assert len(writers) >= 2  # Ray workers, of both nodes (one CPU each, jobs at once)

    _use_local_store(tmp_path / "local", monkeypatch)
    _reproduce(excerpt_dir, tmp_path / "local", "--workers", "2")  # two processes x one thread
    compared = [pd.read_csv(tmp_path / run / "comparison.csv") for run in ("ray", "local")]
    assert len(compared[0]) == len(PATIENTS)
    pd.testing.assert_frame_equal(*compared)


def _kill_a_running_setting(uri: str, killed: list[str]) -> None:
    """SIGKILL the worker process of the first setting run seen mid-job (an epoch logged)."""
    client = MlflowClient(uri)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while time.monotonic() < deadline and not killed:
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(
            experiments, "tags.grid_role = 'setting' and attributes.status = 'RUNNING'"
        )
        for run in running:
            if run.data.metrics and int(run.data.tags["pid"]) != os.getpid():
                os.kill(int(run.data.tags["pid"]), signal.SIGKILL)
                killed.append(run.info.run_id)
                return
        time.sleep(0.2)


@pytest.mark.slow
def test_a_ray_worker_killed_mid_job_is_run_again_its_run_fails_and_a_rerun_resumes(
    ray_address: str,
    server: str,  # noqa: F811
    excerpt_dir: Path,
    tmp_path: Path,
) -> None:
    cluster = ExecutorSpec(None, "ray", ray_address)
    request = _grid_request(excerpt_dir, tmp_path / "cache", ("233",), epochs=20)
    killed: list[str] = []
    killer = threading.Thread(target=_kill_a_running_setting, args=(server, killed), daemon=True)
    killer.start()
    (first,) = run_grid_search(request, GRID, "individual", cluster)
    killer.join(timeout=5)
    assert len(killed) == 1
    runs = {run.info.run_id: run for run in _all_runs()}
    dead = runs.pop(killed[0])
    assert dead.info.status == "FAILED"
    assert dead.data.tags["failure_reason"] == DEAD_WORKER
    assert {run.info.status for run in runs.values()} == {"FINISHED"}  # the others, the retry
    assert {result.status for result in first.results} == {"FINISHED"}

    (second,) = run_grid_search(request, GRID, "individual", cluster)
    assert [result.reused for result in second.results] == [True, True]
    assert second.winner.run_id == first.winner.run_id


def _one_line_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    return line


def test_a_cluster_is_refused_a_store_that_only_this_machine_reaches(
    mlflow_store: str, excerpt_dir: Path
) -> None:
    args = ("grid-search", "--data-dir", str(excerpt_dir), "--patient", "233")
    line = _one_line_error(*args, "--executor", "ray", "--ray-address", "ray://192.0.2.9:10001")
    assert line.startswith(
        f"Error: the Ray cluster at ray://192.0.2.9:10001 cannot reach the tracking store "
        f"{mlflow_store}, a file of this machine; start a tracking server"
    )
    line = _one_line_error(*args, "--ray-address", "auto")
    assert line == "Error: --ray-address needs --executor ray"
    assert _all_runs() == []  # refused before any run started


@pytest.mark.slow
def test_a_local_ray_of_this_machine_shares_its_sqlite_store(
    excerpt_dir: Path, tmp_path: Path, empty_store_uri: str
) -> None:
    uri = empty_store_uri
    command = [str(Path(sys.executable).parent / "ecg-platform"), "individual"]
    command += ["--data-dir", str(excerpt_dir), "--patient", ",".join(PATIENTS), "--epochs", "1"]
    command += ["--executor", "ray", "--workers", "2"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "individual: 2 patients on a local Ray (1 node(s)): 2 worker(s)" in done.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 3 and {run.info.status for run in runs} == {"FINISHED"}


def test_nothing_of_ray_is_imported_unless_asked_for() -> None:
    script = (
        "import sys\n"
        "from ecg_platform.cli import cli\n"
        "import ecg_platform.workflows.grid_search, ecg_platform.workflows.reproduce\n"
        "from ecg_platform.workflows.executor import make_executor\n"
        "make_executor(2).close(False)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'ray'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
