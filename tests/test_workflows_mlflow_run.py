"""End to end through `mlflow run . -e <entry point> --env-manager local`, on real excerpts.

One store per module: pretrain registers the champion once, the other tests build on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import StudyData
from ecg_platform.data.patients import EVERY_PATIENT
from ecg_platform.data.source import DataSource
from ecg_platform.tracking.model_io import PYFUNC_CONFIG, load_state_dict
from ecg_platform.tracking.schema import TRACKING
from ecg_platform.workflows.pretrain import run_pretrain
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import PRETRAIN_DEFAULTS

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STAGES = ("pretrain", "individual", "finetune")
FINETUNED_PATIENT = "119"
HEAD_PARAMETERS = 160 * 160 + 160 + 160 + 1


@dataclass(frozen=True)
class Store:
    """A sqlite store whose stage experiments keep their artifacts in a tmp folder."""

    uri: str
    folder: Path
    env: dict[str, str]

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def runs(self, stage: str) -> list:
        experiment = self.client.get_experiment_by_name(TRACKING.experiment(stage))
        return self.client.search_runs([experiment.experiment_id])


def mlflow_run(store: Store, entry_point: str, **params: object) -> subprocess.Popen:
    """Start `mlflow run` on this repository (its own process group, like a shell job)."""
    command = [str(BIN / "mlflow"), "run", str(REPO_ROOT), "-e", entry_point]
    command += ["--env-manager", "local", "--experiment-name", TRACKING.experiment(entry_point)]
    for name, value in params.items():
        command += ["-P", f"{name}={value}"]
    return subprocess.Popen(
        command,
        env=store.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finished(process: subprocess.Popen) -> str:
    """Wait for a successful exit; its output."""
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> Store:
    folder = tmp_path_factory.mktemp("store")
    (folder / "mlflow.db").write_bytes(empty_mlflow_db.read_bytes())
    uri = f"sqlite:///{folder}/mlflow.db"
    for stage in STAGES:
        location = (folder / "artifacts" / stage).as_uri()
        MlflowClient(uri).create_experiment(TRACKING.experiment(stage), location)
    inherited = {name: value for name, value in os.environ.items() if "MLFLOW" not in name}
    env = {
        **inherited,
        "MLFLOW_TRACKING_URI": uri,
        "ECG_CACHE_DIR": str(folder / "cache"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return Store(uri, folder, env)


@pytest.fixture
def use_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """Point this process at the module's store too."""
    for name in ("MLFLOW_TRACKING_URI", "ECG_CACHE_DIR"):
        monkeypatch.setenv(name, store.env[name])
    mlflow.set_tracking_uri(store.uri)
    yield store
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def pretrained(store: Store, excerpt_dir: Path) -> ModelVersion:
    finished(mlflow_run(store, "pretrain", data_dir=excerpt_dir, epochs=2))
    return store.client.get_model_version_by_alias(TRACKING.pretrained_model, "champion")


@pytest.mark.slow
def test_pretrain_logs_the_run_and_registers_the_champion(
    store: Store, pretrained: ModelVersion
) -> None:
    client = store.client
    run = client.get_run(pretrained.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "ecg-pretrain"
    assert run.data.tags["mlflow.project.entryPoint"] == "pretrain"  # mlflow run's own run
    assert {"stage": "pretrain", "patient": "all"}.items() <= run.data.tags.items()
    assert run.data.tags["data_config_hash"] == data_config("paper").hash()
    assert pretrained.tags["data_config_hash"] == data_config("paper").hash()
    assert float(pretrained.tags["val_loss"]) == pytest.approx(run.data.metrics["best_val_loss"])
    assert run.data.params["train.epochs"] == "2"
    assert run.data.params["data.patients"] == "119,208,233"
    assert run.data.metrics["trainable_params"] == 67169
    assert 0 <= run.data.metrics["test_balanced_accuracy"] <= 1
    for metric in ("train_loss", "val_loss", "val_balanced_accuracy", "lr"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        assert steps == [1, 2], metric
    assert {
        "data_config.json",
        "checkpoint/best.pt",
        "figures/training_curves.png",
        "figures/confusion_matrix.png",
    } <= _artifact_paths(client, run.info.run_id)


def test_finetune_starts_from_exactly_the_champion_and_serves(
    use_store: Store, pretrained: ModelVersion, excerpt_dir: Path, excerpt_study: StudyData
) -> None:
    """Tags name the champion, and the weights prove it: the registered fine-tuned model's
    frozen encoder is the champion's bit for bit, while its head moved."""
    finished(mlflow_run(use_store, "finetune", data_dir=excerpt_dir, patient="119", epochs=2))
    name = TRACKING.registered_model("finetune", FINETUNED_PATIENT)
    version = use_store.client.get_model_version_by_alias(name, "champion")
    run = use_store.client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    exact = f"models:/{TRACKING.pretrained_model}/{pretrained.version}"
    assert run.data.tags["pretrained_uri"] == exact
    assert run.data.tags["pretrained_version"] == str(pretrained.version)
    assert run.data.params["pretrained.uri"] == exact
    assert run.data.tags["hparams_source"] == "study-table"
    assert run.data.params["train.batch_size"] == "4"
    assert run.data.metrics["trainable_params"] == HEAD_PARAMETERS
    champion = load_state_dict(f"models:/{TRACKING.pretrained_model}/{pretrained.version}")
    weights = load_state_dict(f"models:/{name}/{version.version}")
    assert weights.keys() == champion.keys()
    encoder = [key for key in champion if key.startswith("encoder.")]
    assert len(encoder) == 17  # the stem, two convolutions (weight, bias) in each of 4 blocks
    for key in encoder:
        assert torch.equal(weights[key], champion[key]), key
    head = [key for key in champion if key.startswith("head.")]
    assert len(head) == 4 and not any(torch.equal(weights[k], champion[k]) for k in head)

    served = mlflow.pyfunc.load_model(f"models:/{name}@champion", model_config=PYFUNC_CONFIG)
    windows, labels = excerpt_study.patients[FINETUNED_PATIENT].part("test")
    probabilities = served.predict(windows[:, None, :].astype(np.float32))
    assert probabilities.shape == labels.shape
    predicted = probabilities >= 0.5
    metrics = run.data.metrics
    assert int(np.sum(predicted & (labels == 1))) == metrics["test_tp"]
    assert int(np.sum(~predicted & (labels == 0))) == metrics["test_tn"]


def test_a_worse_pretrain_leaves_the_champion(
    use_store: Store, pretrained: ModelVersion, excerpt_dir: Path
) -> None:
    untrained = PRETRAIN_DEFAULTS.replace(epochs=1, lr=1e-9)
    source = DataSource.resolve(data_config("paper"), excerpt_dir)
    request = StageRequest("pretrain", source, EVERY_PATIENT, train=untrained)
    (outcome,) = run_pretrain(request)
    client = use_store.client
    worse = client.get_model_version(TRACKING.pretrained_model, outcome.model_version)
    assert float(worse.tags["val_loss"]) > float(pretrained.tags["val_loss"])
    assert not outcome.champion
    champion = client.get_model_version_by_alias(TRACKING.pretrained_model, "champion")
    assert champion.version == pretrained.version


@pytest.mark.slow
def test_ctrl_c_on_mlflow_run_ends_the_run_killed_or_failed(
    store: Store, excerpt_dir: Path
) -> None:
    before = {run.info.run_id for run in store.runs("individual")}
    process = mlflow_run(
        store, "individual", data_dir=excerpt_dir, patient="233", epochs=500, early_stopping=False
    )
    run_id = _wait_for_training(store, before)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a shell does: the whole job
    process.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while (status := store.client.get_run(run_id).info.status) == "RUNNING":
        assert time.monotonic() < deadline, "the run stayed RUNNING"
        time.sleep(0.5)
    assert status in ("KILLED", "FAILED")


def _wait_for_training(store: Store, before: set[str]) -> str:
    """The id of the new individual run, once it has logged its first epoch."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for run in store.runs("individual"):
            if run.info.run_id not in before and "train_loss" in run.data.metrics:
                return run.info.run_id
        time.sleep(0.5)
    raise AssertionError("training did not start within 120 s")


def _artifact_paths(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    """Every artifact file of a run, recursively."""
    paths = set()
    for item in client.list_artifacts(run_id, folder):
        paths |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return paths
