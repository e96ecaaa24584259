"""Eight training runs logging at once (4 processes x 2 threads): nothing lost on the team
server (`ecg-platform server`: a real PostgreSQL cluster and mlflow server on 127.0.0.1) nor on
an embedded SQLite store."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.schema import TRACKING

PROCESSES, THREADS = 4, 2  # 8 runs at once, as the issue allows (4 processes x 2 threads)
RUNS = PROCESSES * THREADS
EPOCHS = 30
MODEL = "ecg-concurrency"
# One training process, two runs at once in two threads (MLflow's active run is per thread), as
# the stages log: per-epoch metrics, a pt2 model, a registry version and the champion rule
# (metrics and registry writes 8 at once; model exports and uploads 4 at once, one per process).
# Validation loss 1 / (index + 1): run RUNS - 1 must end as the champion.
TRAINING_PROCESS = (
    """
import sys
import threading
import mlflow
import numpy as np
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.model_io import log_model
from ecg_platform.tracking.registry import promote_if_better, register_model
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.store import prepare_store

uri, process = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(prepare_store(uri))
failures = []
exporting = threading.Lock()  # torch.export is not thread-safe: one model export at a time


def train(index):
    try:
        val_loss = 1.0 / (index + 1)
        with stage_run("pretrain", f"p{index}", {}) as run:
            for epoch in range(1, EPOCHS + 1):
                losses = {"val_loss": val_loss + 1.0 / epoch, "train_loss": 2.0 / epoch}
                run.log_metrics(losses, epoch)
            model = CNN1D(ModelConfig(num_blocks=1, block_channels=4, hidden_units=8))
            with exporting:
                model_uri = log_model(model, np.zeros((2, 1, 128), dtype=np.float32))
        version = register_model(model_uri, MODEL, {"val_loss": val_loss})
        promote_if_better(MODEL, version)
    except BaseException as error:
        failures.append(repr(error))
        raise


threads = [threading.Thread(target=train, args=(process * THREADS + t,)) for t in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.exit(1 if failures else 0)
""".replace("EPOCHS", str(EPOCHS))
    .replace("MODEL", repr(MODEL))
    .replace("THREADS", str(THREADS))
)


def _train_at_once(uri: str, cwd: Path, python_at_once) -> None:
    results = python_at_once(TRAINING_PROCESS, [[uri, str(i)] for i in range(PROCESSES)], cwd)
    failed = [output for code, output in results if code]
    assert not failed, failed[0][-3000:]


def _check_nothing_lost(uri: str) -> None:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(TRACKING.experiment("pretrain"))
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == RUNS
    assert {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:
        for metric in ("val_loss", "train_loss"):
            steps = [point.step for point in client.get_metric_history(run.info.run_id, metric)]
            assert sorted(steps) == list(range(1, EPOCHS + 1))
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == RUNS
    assert {version.run_id for version in versions} == {run.info.run_id for run in runs}
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert float(champion.tags["val_loss"]) == 1.0 / RUNS


@pytest.mark.slow
def test_eight_runs_at_once_on_a_new_sqlite_store_lose_nothing(
    tmp_path: Path, python_at_once
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _train_at_once(uri, tmp_path, python_at_once)
    _check_nothing_lost(uri)


@pytest.mark.slow
def test_eight_runs_at_once_on_the_team_server_lose_nothing_and_sigterm_stops_it(
    tmp_path: Path, python_at_once
) -> None:
    """`ecg-platform server` as a user starts it (a PostgreSQL cluster and an mlflow server on
    127.0.0.1); then what a service manager sends: no PostgreSQL or mlflow server outlives it."""
    root = Path(tempfile.mkdtemp(prefix="ecg-team-server-")) / "server"
    root.parent.chmod(0o755)  # as root, the cluster runs as the postgres user
    port, db_port = free_port(), free_port()
    command = [str(Path(sys.executable).parent / "ecg-platform"), "server", "--root", str(root)]
    command += ["--port", str(port), "--db-port", str(db_port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: list[psutil.Process] = []
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("export MLFLOW_TRACKING_URI="):
                break
        else:
            raise AssertionError("the server never came up: " + "".join(lines))
        url = line.strip().split("=", 1)[1]
        _train_at_once(url, tmp_path, python_at_once)
        _check_nothing_lost(url)

        postmaster = int((root / "pgdata" / "postmaster.pid").read_text().split()[0])
        children = [*psutil.Process(process.pid).children(recursive=True)]
        commands = [" ".join(child.cmdline()) for child in children]
        assert not [line for line in commands if "mlflow.server.jobs" in line]  # no job workers
        children.append(psutil.Process(postmaster))  # a daemon: not the command's child
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
    finally:
        for leftover in children:
            if leftover.is_running():
                leftover.kill()
        process.kill()
        shutil.rmtree(root.parent, ignore_errors=True)
