"""Grid search on a short real patient: nesting, the winner, its use, failures, resume."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Run

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.tracking.schema import TRACKING
from ecg_platform.workflows.grid_search import (
    PatientGrid,
    SettingResult,
    pick_winner,
    run_grid_search,
)
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS, GridSpec, PatientHyperparams

PATIENT = "233"  # a 5-minute excerpt: 300 windows
HASH = data_config("paper").hash()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grid-cache")


def _invoke(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def _runs(stage: str) -> list[Run]:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRACKING.experiment(stage))
    return client.search_runs([experiment.experiment_id])


def _settings(runs: list[Run]) -> dict[str, list[Run]]:
    """The setting runs by setting label."""
    found: dict[str, list[Run]] = {}
    for run in runs:
        if run.data.tags.get("grid_role") == "setting":
            found.setdefault(run.data.tags["grid_setting"], []).append(run)
    return found


def test_settings_nest_under_the_patient_run_and_individual_uses_the_winner(
    mlflow_store: str, excerpt_dir: Path, cache_dir: Path
) -> None:
    source = ("--data-dir", excerpt_dir, "--cache-dir", cache_dir, "--patient", PATIENT)
    output = _invoke(
        "grid-search", *source, "--epochs", 1, "--workers", 1,
        "--grid-batch-sizes", "16,32", "--grid-lrs", 0.01, "--grid-weighted", "true",
    )  # fmt: skip
    runs = _runs("grid-search")
    (parent,) = [run for run in runs if run.data.tags["grid_role"] == "patient"]
    settings = {label: found for label, (found,) in _settings(runs).items()}
    assert set(settings) == {"b16-lr0.01-weighted", "b32-lr0.01-weighted"}
    for run in settings.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["data_config_hash"] == data_config("paper").hash()
        assert not [key for key in run.data.metrics if key.startswith("test_")]
    best = max(
        settings.values(),
        key=lambda run: (
            run.data.metrics["best_val_balanced_accuracy"],
            -run.data.metrics["best_val_loss"],
        ),
    )
    tags = parent.data.tags
    assert tags["grid_winner_run_id"] == best.info.run_id
    assert tags["grid_winner_batch_size"] == best.data.params["train.batch_size"]
    assert f"{PATIENT}: winner {best.data.tags['grid_setting']}" in output
    path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path=".")
    recorded = json.loads((Path(path) / "grid_winner.json").read_text())
    assert recorded["run_id"] == best.info.run_id
    assert recorded["data_config_hash"] == data_config("paper").hash()

    _invoke("individual", *source, "--epochs", 1)
    (individual,) = _runs("individual")
    assert individual.data.tags["hparams_source"] == "grid-search"
    assert individual.data.tags["hparams_grid_run_id"] == parent.info.run_id
    assert individual.data.params["train.batch_size"] == best.data.params["train.batch_size"]


def test_a_diverging_setting_fails_alone_and_a_rerun_reuses_finished_ones(
    mlflow_store: str, excerpt_dir: Path, cache_dir: Path
) -> None:
    request = StageRequest(
        "grid-search",
        DataSource(excerpt_dir, cache_dir, data_config("paper")),
        PatientSelection((PATIENT,)),
        train=PATIENT_DEFAULTS.replace(epochs=1),
    )
    grid = GridSpec(batch_sizes=(32,), lrs=(1e3, 0.01), weighted_sampling=(True,))
    (first,) = run_grid_search(request, grid, "individual", workers=2)  # two processes
    settings = _settings(_runs("grid-search"))
    (diverged,) = settings["b32-lr1000-weighted"]
    assert diverged.info.status == "FAILED"
    assert "training diverged" in diverged.data.tags["failure_reason"]
    (finished,) = settings["b32-lr0.01-weighted"]
    assert finished.info.status == "FINISHED"
    assert first.winner.run_id == finished.info.run_id

    (second,) = run_grid_search(request, grid, "individual", workers=1)
    assert [result.reused for result in second.results] == [False, True]
    assert second.winner.run_id == finished.info.run_id
    settings = _settings(_runs("grid-search"))
    assert [run.info.status for run in settings["b32-lr0.01-weighted"]] == ["FINISHED"]
    assert [run.info.status for run in settings["b32-lr1000-weighted"]] == ["FAILED", "FAILED"]
    parents = [run for run in _runs("grid-search") if run.data.tags["grid_role"] == "patient"]
    assert {run.data.tags["grid_winner_run_id"] for run in parents} == {finished.info.run_id}


def _one_setting(
    excerpt_dir: Path, cache_dir: Path, epochs: int = 1, lr: float = 0.01, pretrained: str = ""
) -> PatientGrid:
    """A one-setting grid search of PATIENT (finetune mode when given a pretrained URI)."""
    request = StageRequest(
        "grid-search",
        DataSource(excerpt_dir, cache_dir, data_config("paper")),
        PatientSelection((PATIENT,)),
        train=PATIENT_DEFAULTS.replace(epochs=epochs),
    )
    grid = GridSpec(batch_sizes=(32,), lrs=(lr,), weighted_sampling=(True,))
    if pretrained:
        (found,) = run_grid_search(request, grid, "finetune", 1, pretrained_uri=pretrained)
    else:
        (found,) = run_grid_search(request, grid, "individual", workers=1)
    return found


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"epochs": 2}, id="epochs"),
        pytest.param({"lr": 0.02}, id="lr"),
        pytest.param({"pretrained": f"models:/{TRACKING.pretrained_model}/2"}, id="pretrained"),
    ],
)
def test_a_setting_whose_epochs_lr_or_pretrained_version_changed_is_trained_anew(
    register_pretrained: Callable[..., str],
    excerpt_dir: Path,
    cache_dir: Path,
    changed: dict[str, object],
) -> None:
    """Reuse compares every logged setting and the pretrained version, not the patient alone:
    a changed one trains a new run; the unchanged search is still reused (the control)."""
    original: dict[str, object] = {}
    if "pretrained" in changed:  # two versions, of other weights
        assert [register_pretrained(HASH, seed) for seed in (7, 8)] == ["1", "2"]
        original = {"pretrained": f"models:/{TRACKING.pretrained_model}/1"}
    (first,) = _one_setting(excerpt_dir, cache_dir, **original).results
    (other,) = _one_setting(excerpt_dir, cache_dir, **(original | changed)).results
    assert not other.reused and other.status == "FINISHED"
    assert other.run_id != first.run_id
    (again,) = _one_setting(excerpt_dir, cache_dir, **original).results
    assert again.reused and again.run_id == first.run_id
    assert len(_settings(_runs("grid-search"))["b32-lr0.01-weighted"]) == (
        1 if "lr" in changed else 2
    )


def _result(accuracy: float, loss: float, status: str = "FINISHED") -> SettingResult:
    setting = PatientHyperparams(4, loss, True)
    return SettingResult(setting, f"run-{accuracy}-{loss}", status, accuracy, loss)


def test_the_winner_has_the_best_validation_accuracy_then_the_lower_loss() -> None:
    assert pick_winner([_result(0.8, 0.1), _result(0.9, 0.5)]) == _result(0.9, 0.5)
    assert pick_winner([_result(0.9, 0.5), _result(0.9, 0.2)]) == _result(0.9, 0.2)
    assert pick_winner([_result(math.nan, 0.1), _result(0.6, 0.9)]) == _result(0.6, 0.9)
    assert pick_winner([_result(0.99, 0.1, "FAILED"), _result(0.6, 0.9)]) == _result(0.6, 0.9)
    assert pick_winner([_result(0.99, 0.1, "FAILED")]) is None


def test_every_patients_settings_are_queued_at_once_under_their_patients_runs(
    mlflow_store: str, excerpt_dir: Path, cache_dir: Path
) -> None:
    output = _invoke(
        "grid-search", "--data-dir", excerpt_dir, "--cache-dir", cache_dir,
        "--patient", "119,233", "--epochs", 1, "--workers", 2,
        "--grid-batch-sizes", 32, "--grid-lrs", "0.01,0.001", "--grid-weighted", "true",
    )  # fmt: skip
    assert "grid-search: 4 settings, 0 reused (already finished), 4 to run on 2 worker(s)" in output
    runs = _runs("grid-search")
    (top,) = [run for run in runs if run.data.tags["grid_role"] == "patients"]
    patients = {
        run.data.tags["patient"]: run for run in runs if run.data.tags["grid_role"] == "patient"
    }
    assert set(patients) == {"119", "233"}
    for patient, run in patients.items():
        assert run.data.tags["mlflow.parentRunId"] == top.info.run_id
        settings = [
            setting
            for setting in runs
            if setting.data.tags.get("mlflow.parentRunId") == run.info.run_id
        ]
        assert {setting.data.tags["patient"] for setting in settings} == {patient}
        assert len(settings) == 2
        assert run.data.tags["grid_winner_run_id"] in {s.info.run_id for s in settings}
    assert {run.info.status for run in runs} == {"FINISHED"}
