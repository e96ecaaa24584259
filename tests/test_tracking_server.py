"""Against a real `mlflow server` (sqlite, artifacts served): log, register, load a model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import StudyData
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.tracking.model_io import PYFUNC_CONFIG
from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.schema import TRACKING
from ecg_platform.workflows.individual import run_individual
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS


def _wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "mlflow server exited"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server at {url} not healthy within {timeout} s")


@pytest.fixture
def server(tmp_path: Path, empty_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tracking server on a free local port; this process logs to it."""
    shutil.copy(empty_mlflow_db, tmp_path / "server.db")
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"]
    command += ["--port", url.rsplit(":", 1)[1], "--workers", "1", "--serve-artifacts"]
    command += ["--backend-store-uri", f"sqlite:///{tmp_path}/server.db"]
    command += ["--artifacts-destination", str(tmp_path / "served")]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True, **quiet)
    try:
        _wait_until_healthy(url, process)
        client_dir = tmp_path / "client"
        client_dir.mkdir()
        monkeypatch.chdir(client_dir)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("ECG_CACHE_DIR", str(client_dir / "cache"))
        mlflow.set_tracking_uri(url)
        yield url
    finally:
        mlflow.set_tracking_uri(None)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_runs_log_and_register_through_a_tracking_server(
    server: str, tmp_path: Path, excerpt_dir: Path, excerpt_study: StudyData
) -> None:
    train = PATIENT_DEFAULTS.replace(epochs=1)
    source = DataSource.resolve(data_config("paper"), excerpt_dir)
    request = StageRequest("individual", source, PatientSelection(("233",)), train=train)
    (outcome,) = run_individual(request)
    client = MlflowClient()
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/best.pt"
    ]
    assert list((tmp_path / "served").rglob("best.pt")), "artifacts were not stored by the server"
    assert not (tmp_path / "client" / "mlruns").exists()
    name = TRACKING.registered_model("individual", "233")
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == outcome.model_version == "1"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion", model_config=PYFUNC_CONFIG)
    windows, _ = excerpt_study.patients["233"].part("test")
    probabilities = served.predict(windows[:, None, :].astype(np.float32))
    assert probabilities.shape == (len(windows),)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert f"run {outcome.run_id}" in champion.description
    assert "data config " + data_config("paper").hash() in champion.description


def test_the_rest_api_lists_a_runs_datasets_with_digest_and_context(
    server: str, excerpt_dir: Path
) -> None:
    """What the UI's Datasets column reads: one dataset per split of the run's data config."""
    source = DataSource.resolve(data_config("paper"), excerpt_dir)
    train = PATIENT_DEFAULTS.replace(epochs=1)
    request = StageRequest("individual", source, PatientSelection(("233",)), train=train)
    (outcome,) = run_individual(request)
    with urllib.request.urlopen(f"{server}/api/2.0/mlflow/runs/get?run_id={outcome.run_id}") as r:
        inputs = json.load(r)["run"]["inputs"]["dataset_inputs"]
    found = {
        item["dataset"]["name"]: (item["dataset"]["digest"], item["tags"][0]["value"])
        for item in inputs
    }
    digest = data_config("paper").hash()
    assert found == {
        "paper-train": (digest, "training"),
        "paper-val": (digest, "validation"),
        "paper-test": (digest, "test"),
    }
