"""`reproduce` on two real excerpt patients: everything nested under one run, and resumed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Run

from ecg_platform.cli import cli

PATIENTS = ("119", "233")


def _reproduce_args(
    excerpt_dir: Path, folder: Path, patients: Sequence[str] = PATIENTS, *changed: object
) -> list[str]:
    """`reproduce` with 1 epoch everywhere, unless `changed` options say otherwise."""
    args = ["reproduce", "--data-dir", excerpt_dir, "--cache-dir", folder / "cache"]
    args += ["--patient", ",".join(patients), "--epochs", 1, "--pretrain-epochs", 1]
    args += ["--workers", 1, "--out", folder / "report", *changed]
    return [str(arg) for arg in args]


def _reproduce(
    excerpt_dir: Path, folder: Path, patients: Sequence[str] = PATIENTS, *changed: object
) -> str:
    result = CliRunner().invoke(cli, _reproduce_args(excerpt_dir, folder, patients, *changed))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def reproduced_233(
    store_from_commands: Callable[[Path, list[list[str]]], Path],
    tmp_path_factory: pytest.TempPathFactory,
    excerpt_dir: Path,
) -> Path:
    """A store holding one finished `reproduce` of patient 233, built once for the module."""
    folder = tmp_path_factory.mktemp("reproduced-233")
    return store_from_commands(folder, [_reproduce_args(excerpt_dir, folder, ["233"])])


def _all_runs() -> list[Run]:
    client = MlflowClient()
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _by_stage(runs: list[Run], stage: str) -> list[Run]:
    return [run for run in runs if run.data.tags.get("stage") == stage]


def _children(runs: list[Run], parent: Run) -> list[Run]:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


@pytest.mark.slow
def test_reproduce_nests_every_stage_under_one_run_and_resumes(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    output = _reproduce(excerpt_dir, tmp_path)
    runs = _all_runs()
    (top,) = _by_stage(runs, "reproduce")
    assert top.info.status == "FINISHED"
    assert MlflowClient().get_experiment(top.info.experiment_id).name == "ecg-reproduce"
    stages = sorted(run.data.tags["stage"] for run in _children(runs, top))
    assert stages == ["finetune", "individual", "pretrain", "report"]
    (pretrain,) = _by_stage(runs, "pretrain")
    version = pretrain.data.tags["registered_version"]
    for stage in ("individual", "finetune"):
        (parent,) = [run for run in _by_stage(runs, stage) if "," in run.data.tags["patient"]]
        patients = {run.data.tags["patient"]: run for run in _children(runs, parent)}
        assert set(patients) == set(PATIENTS)
        assert {run.info.status for run in patients.values()} == {"FINISHED"}
        if stage == "finetune":
            assert {run.data.tags["pretrained_version"] for run in patients.values()} == {version}
    assert {"time_total_s", "time_individual_training_s"} <= set(top.data.metrics)
    assert "where the time went" in output
    assert "mean test balanced accuracy" in output
    assert (tmp_path / "report" / "pretraining_curves.png").is_file()

    interrupted = next(
        run
        for run in _by_stage(runs, "individual")
        if run.data.tags["patient"] == "233" and run.info.status == "FINISHED"
    )
    MlflowClient().set_terminated(interrupted.info.run_id, "KILLED")
    output = _reproduce(excerpt_dir, tmp_path)
    assert "pretrain: reusing finished run" in output
    assert "individual: 2 patients, 1 reused (already finished), 1 to run" in output
    assert "finetune: 2 patients, 2 reused (already finished), 0 to run" in output
    after = _all_runs()
    new = {run.info.run_id for run in after} - {run.info.run_id for run in runs}
    new_stages = sorted(run.data.tags["stage"] for run in after if run.info.run_id in new)
    assert new_stages == ["finetune", "individual", "individual", "report", "reproduce"]
    (rerun,) = [
        run
        for run in after
        if run.info.run_id in new and run.data.tags["stage"] == "individual"
        if run.data.tags["patient"] == "233"
    ]
    compared = pd.read_csv(tmp_path / "report" / "runs.csv", dtype=str)
    assert rerun.info.run_id in set(compared["run_id"])


@pytest.mark.parametrize(
    ("changed", "retrained"),
    [
        pytest.param(("--epochs", 2), ["finetune", "individual"], id="epochs"),
        # finetune's own settings stay; it starts from the new pretrained version
        pytest.param(("--pretrain-epochs", 2), ["finetune", "pretrain"], id="pretrained-version"),
        pytest.param(("--encoder-lr-scale", 0.1), ["finetune"], id="encoder-lr-scale"),
    ],
)
@pytest.mark.slow
def test_reproduce_reuses_no_run_whose_settings_changed(
    reproduced_233: Path,
    use_store_copy: Callable[[Path], Path],
    excerpt_dir: Path,
    tmp_path: Path,
    changed: tuple[str, object],
    retrained: list[str],
) -> None:
    """Reuse is keyed on the settings: after one change, exactly the stages it touches train
    anew (finetune too when only the pretrained version changed), and the others are reused."""
    use_store_copy(reproduced_233)
    before = {run.info.run_id for run in _all_runs()}
    _reproduce(excerpt_dir, tmp_path, ["233"], *changed)
    new = [run for run in _all_runs() if run.info.run_id not in before]
    trained = {run.data.tags["stage"]: run for run in new if "test_loss" in run.data.metrics}
    assert sorted(trained) == retrained
    option, value = changed
    if option == "--epochs":
        assert {run.data.params["train.epochs"] for run in trained.values()} == {str(value)}
    finetuned = trained["finetune"]
    pretrained = [run for run in _all_runs() if run.data.tags.get("stage") == "pretrain"]
    newest = max(pretrained, key=lambda run: run.info.start_time)
    assert finetuned.data.tags["pretrained_version"] == newest.data.tags["registered_version"]
    assert len(pretrained) == (2 if option == "--pretrain-epochs" else 1)
