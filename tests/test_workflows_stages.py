"""The stages in process, through the CLI: nesting, per-patient settings, pretrained guards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.models.cnn1d import CNN1D, count_trainable_parameters
from ecg_platform.tracking.model_io import load_state_dict
from ecg_platform.tracking.schema import TRACKING, Stage
from ecg_platform.workflows.hyperparams import patient_train_config
from ecg_platform.workflows.request import PER_PATIENT_FIELDS
from ecg_platform.workflows.settings import PATIENT_DEFAULTS


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("patient", "given", "expected", "source"),
    [
        ("105", {}, (4, 1e-3, False), "study-table"),
        ("119", {"lr": 0.1}, (4, 0.1, True), "cli+study-table"),
        ("105", {"batch_size": 8, "lr": 0.01, "weighted_sampling": True}, (8, 0.01, True), "cli"),
        ("999", {}, (32, 1e-3, True), "defaults"),
    ],
)
def test_patient_settings_come_from_the_cli_else_the_study_table(
    patient: str, given: dict, expected: tuple, source: str
) -> None:
    train = PATIENT_DEFAULTS.replace(**given)
    config, found_source = patient_train_config(patient, train, PER_PATIENT_FIELDS - set(given))
    assert (config.batch_size, config.lr, config.weighted_sampling) == expected
    assert found_source == source
    assert config.early_stopping


@pytest.mark.parametrize(
    ("stage", "mode"), [("finetune", ()), ("grid-search", ("--mode", "finetune"))]
)
def test_finetune_with_an_empty_registry_says_to_pretrain_first(
    mlflow_store: str, excerpt_dir: Path, stage: Stage, mode: tuple[str, ...]
) -> None:
    code, output = _invoke(stage, *mode, "--data-dir", str(excerpt_dir), "--patient", "119")
    assert code == 1
    assert "Error: no pretrained model yet: run `mlflow run . -e pretrain`" in output
    assert "Traceback" not in output
    assert MlflowClient().get_experiment_by_name(TRACKING.experiment(stage)) is None


@pytest.mark.parametrize(
    ("stage", "patient", "preset", "message"),
    [
        ("pretrain", "999", "paper", "record(s) 999 not found in"),
        ("individual", "999", "paper", "record(s) 999 not found in"),
        # before the (empty) registry is asked for a pretrained model
        ("finetune", "999", "paper", "record(s) 999 not found in"),
        ("individual", "102", "patient-specific", "record(s) 102 not patient-specific patients"),
    ],
)
def test_a_patient_no_stage_could_train_creates_no_run(
    mlflow_store: str, excerpt_dir: Path, stage: str, patient: str, preset: str, message: str
) -> None:
    """Checked before any run exists: a typo leaves no FAILED run behind."""
    code, output = _invoke(
        stage, "--data-dir", str(excerpt_dir), "--preset", preset, "--patient", patient
    )
    assert code == 1
    assert message in output.strip().splitlines()[-1], output
    assert (
        MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
        == []
    )


@pytest.mark.parametrize(
    ("patients", "workers", "progress_line"),
    [
        ("all", "1", "epoch 1/1 train loss "),  # in this process: its epochs' log lines
        ("119,233", "2", "[individual] "),  # in two spawned workers: a line per finished run
    ],
)
@pytest.mark.slow
def test_several_patients_nest_under_a_parent_with_summary_metrics(
    mlflow_store: str,
    excerpt_dir: Path,
    copy_record: Callable[..., Path],
    tmp_path: Path,
    patients: str,
    workers: str,
    progress_line: str,
) -> None:
    data_dir = tmp_path / "two-records"
    for record in ("119", "233"):
        copy_record(excerpt_dir, record, data_dir)
    args = ("individual", "--data-dir", str(data_dir), "--patient", patients, "--epochs", "1")
    code, output = _invoke(*args, "--workers", workers)
    assert code == 0, output
    assert output.count(progress_line) == 2  # one line per patient's run
    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRACKING.experiment("individual"))
    runs = client.search_runs([experiment.experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = {run.data.tags["patient"]: run for run in runs if run is not parent}
    assert parent.data.tags["patient"] == patients
    assert parent.data.params["data.patients"] == "119,233"
    assert {run.info.run_name for run in children.values()} == {"individual-119", "individual-233"}
    assert set(children) == {"119", "233"}
    assert {run.data.tags["mlflow.parentRunId"] for run in children.values()} == {
        parent.info.run_id
    }
    accuracies = [run.data.metrics["test_balanced_accuracy"] for run in children.values()]
    assert parent.data.metrics["test_balanced_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert parent.data.metrics["test_balanced_accuracy_median"] == pytest.approx(
        np.median(accuracies)
    )
    for patient, run in children.items():
        assert run.data.tags["hparams_source"] == "study-table"
        name = TRACKING.registered_model("individual", patient)
        assert client.get_model_version_by_alias(name, "champion").run_id == run.info.run_id


def test_a_pretrained_model_of_another_data_config_needs_force(
    register_pretrained: Callable[..., str], excerpt_dir: Path
) -> None:
    version = register_pretrained("0123456789ab")
    args = ("finetune", "--data-dir", str(excerpt_dir), "--patient", "233", "--epochs", "1")
    code, output = _invoke(*args)
    assert code == 1
    assert "trained under data config 0123456789ab" in output
    assert data_config("paper").hash() in output
    assert "--force" in output
    code, output = _invoke(*args, "--force")
    assert code == 0, output
    name = TRACKING.registered_model("finetune", "233")
    run_id = MlflowClient().get_model_version_by_alias(name, "champion").run_id
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["pretrained_version"] == version
    assert run.data.params["pretrained.forced"] == "True"


@pytest.mark.parametrize(("scale", "trainable"), [("0", "head"), ("0.1", "all")])
def test_finetune_trains_the_encoder_only_with_a_positive_encoder_lr_scale(
    register_pretrained: Callable[..., str], excerpt_dir: Path, scale: str, trainable: str
) -> None:
    """The registered weights say what trained, not only the run's params: at scale 0 every
    encoder tensor is the pretrained champion's, bit for bit, and every head tensor moved; at
    0.1 the encoder moved too."""
    version = register_pretrained(data_config("paper").hash())
    args = ("finetune", "--data-dir", str(excerpt_dir), "--patient", "233", "--epochs", "1")
    code, output = _invoke(*args, "--encoder-lr-scale", scale)
    assert code == 0, output
    name = TRACKING.registered_model("finetune", "233")
    run = MlflowClient().get_run(MlflowClient().get_model_version(name, "1").run_id)
    model = CNN1D()
    expected = count_trainable_parameters(model if trainable == "all" else model.head)
    assert run.data.metrics["trainable_params"] == expected
    assert float(run.data.params["train.encoder_lr_scale"]) == float(scale)
    pretrained = load_state_dict(f"models:/{TRACKING.pretrained_model}/{version}")
    finetuned = load_state_dict(f"models:/{name}/1")
    assert finetuned.keys() == pretrained.keys()
    unchanged = {key: torch.equal(finetuned[key], pretrained[key]) for key in pretrained}
    encoder = [key for key in unchanged if key.startswith("encoder.")]
    head = [key for key in unchanged if key.startswith("head.")]
    assert len(encoder) + len(head) == len(unchanged) and encoder and head
    assert not any(unchanged[key] for key in head)
    frozen = trainable == "head"
    assert [unchanged[key] for key in encoder] == [frozen] * len(encoder)
