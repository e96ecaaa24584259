"""Several patients of a stage: nested runs made by the executor, failures isolated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Run

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.tracking.model_io import log_model
from ecg_platform.tracking.registry import promote_if_better, register_model
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import TRACKING
from ecg_platform.workflows.individual import train_individual
from ecg_platform.workflows.patient_runs import run_patients
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS

PATIENTS = ("119", "233")


@pytest.fixture
def two_records(excerpt_dir: Path, copy_record: Callable[..., Path], tmp_path: Path) -> Path:
    data_dir = tmp_path / "two-records"
    for record in PATIENTS:
        copy_record(excerpt_dir, record, data_dir)
    return data_dir


def _stage_runs(stage: str) -> list[Run]:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRACKING.experiment(stage))
    return client.search_runs([experiment.experiment_id])


def test_finetune_runs_each_patient_in_a_worker_from_the_version_resolved_once(
    mlflow_store: str, two_records: Path
) -> None:
    data_hash = data_config("paper").hash()
    with stage_run("pretrain", "all", {"data_config_hash": data_hash}) as pretrain:
        uri = log_model(CNN1D(), np.zeros((2, 1, 128), dtype=np.float32))
    tags = {"val_loss": 0.5, "data_config_hash": data_hash}
    version = register_model(uri, TRACKING.pretrained_model, tags)
    promote_if_better(TRACKING.pretrained_model, version)
    args = ["finetune", "--data-dir", str(two_records), "--patient", "all", "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--workers", "2"])
    assert result.exit_code == 0, result.output
    runs = _stage_runs("finetune")
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run is not parent]
    assert sorted(run.info.run_name for run in children) == ["finetune-119", "finetune-233"]
    for run in [parent, *children]:
        assert run.info.status == "FINISHED"
        assert run.data.tags["pretrained_version"] == version
        assert run.data.tags["pretrained_run_id"] == pretrain.run_id
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["pretrained.requested"] == TRACKING.default_pretrained_uri
        assert run.data.params["pretrained.uri"] == f"models:/{TRACKING.pretrained_model}/1"


def _fail_for_233(request: StageRequest) -> RunOutcome:
    if request.patients.label == "233":
        raise EcgPlatformError("no windows for this test")
    return train_individual(request)


def test_a_failed_patient_run_lets_the_others_finish_then_fails_the_stage(
    mlflow_store: str, two_records: Path
) -> None:
    request = StageRequest(
        "individual",
        DataSource.resolve(data_config("paper"), str(two_records)),
        PatientSelection(PATIENTS),
        train=PATIENT_DEFAULTS.replace(epochs=1),
    )
    with pytest.raises(EcgPlatformError, match=r"1 patient run\(s\) failed: 233: EcgPlatformError"):
        run_patients(request, _fail_for_233, 1, {})
    runs = {run.info.run_id: run for run in _stage_runs("individual")}
    (parent,) = [run for run in runs.values() if run.data.tags["patient"] == "119,233"]
    runs.pop(parent.info.run_id)
    assert parent.info.status == "FAILED"
    assert "233: EcgPlatformError: no windows" in parent.data.tags["failure_reason"]
    assert parent.data.metrics["patients"] == 1
    (finished,) = runs.values()
    assert finished.info.status == "FINISHED"
    assert finished.data.tags["patient"] == "119"
