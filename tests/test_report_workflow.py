"""The report entry point on a small set of real MLflow runs of real excerpt patients."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.run_search import get_run
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import TRACKING
from ecg_platform.workflows.report import pretraining_figure, report
from ecg_platform.workflows.request import ReportRequest

DATA = data_config("paper")
ARTEFACTS = {
    "report.md",
    "comparison.csv",
    "runs.csv",
    "comparison_bars.png",
    "histogram_individual.png",
    "histogram_finetune.png",
    "pretraining_curves.png",
}


def _log_result(run: TrackedRun, accuracy: float, tags: dict[str, str]) -> None:
    run.log_params({"train.batch_size": 4, "train.lr": 0.001, "train.weighted_sampling": True})
    run.set_tags({"hparams_source": "study-table"} | tags)
    metrics = {"balanced_accuracy": accuracy, "sensitivity": accuracy, "specificity": 0.99}
    run.log_metrics({f"test_{name}": value for name, value in metrics.items()})
    run.log_metrics({"test_f1": accuracy - 0.01, "epochs_run": 12, "best_epoch": 7})


def _patient_run(
    stage: str, patient: str, accuracy: float, tags: dict[str, str] | None = None
) -> str:
    """A finished single-patient run of `stage` with test metrics; its id."""
    with stage_run(stage, patient, {"data_config_hash": DATA.hash()}) as run:
        _log_result(run, accuracy, tags or {})
    return run.run_id


def _pretrain_run(params: dict[str, int] | None = None) -> str:
    """A finished pretraining run with three epochs of curves, epoch 2 the best."""
    with stage_run("pretrain", "all", {"data_config_hash": DATA.hash()}) as run:
        run.log_params(params or {})
        for epoch, loss in enumerate((0.6, 0.3, 0.4), start=1):
            curves = {"loss": loss, "balanced_accuracy": 1 - loss}
            metrics = {f"{split}_{k}": v for split in ("train", "val") for k, v in curves.items()}
            run.log_metrics(metrics | {"lr": 1e-3, "epoch_seconds": 1.0}, step=epoch)
        run.log_metrics({"best_epoch": 2})
    return run.run_id


def test_report_compares_the_latest_finished_runs_and_lists_missing_ones(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    pretrained = {"pretrained_run_id": _pretrain_run()}
    _patient_run("individual", "119", 0.50)  # older: superseded by the next one
    newest_119 = _patient_run("individual", "119", 0.80)
    _patient_run("individual", "208", 0.75)
    _patient_run("individual", "233", 0.70)
    _patient_run("finetune", "119", 0.90, pretrained)
    _patient_run("finetune", "233", 0.85, pretrained)
    with (
        pytest.raises(RuntimeError),
        stage_run("finetune", "208", {"data_config_hash": DATA.hash()}),
    ):
        raise RuntimeError("crashed")  # a FAILED run: not compared
    with stage_run("finetune", "208", {"data_config_hash": "another-hash"}) as run:
        _log_result(run, 0.99, {})  # another data config: not compared

    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["report", "--data-dir", str(excerpt_dir), "--cache-dir", str(tmp_path), "--out", out]
    )
    assert result.exit_code == 0, result.output
    assert {path.name for path in out.iterdir()} == ARTEFACTS
    text = (out / "report.md").read_text()
    assert "Missing finetune runs: 208." in text
    # 119: 0.80 -> 0.90, 233: 0.70 -> 0.85; both improve: W = 0, exact two-sided p = 2 / 2**2
    assert "statistic 0.0, p = 0.5." in text
    table = pd.read_csv(out / "comparison.csv", dtype={"patient": str}).set_index("patient")
    assert list(table.index) == ["119", "208", "233"]
    assert table.loc["119", "individual_balanced_accuracy"] == pytest.approx(0.80)
    assert table.loc["208", "windows"] == 300
    assert pd.isna(table.loc["208", "finetune_balanced_accuracy"])
    runs = pd.read_csv(out / "runs.csv", dtype=str)
    assert newest_119 in set(runs["run_id"])

    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRACKING.experiment("report"))
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics["wilcoxon_pvalue"] == pytest.approx(0.5)
    assert logged.data.metrics["missing_finetune"] == 1
    assert logged.data.tags["pretrain_run_id"] == pretrained["pretrained_run_id"]
    artifacts = {item.path for item in client.list_artifacts(logged.info.run_id, "report")}
    assert artifacts == {f"report/{name}" for name in ARTEFACTS}
    assert str(out) in result.output


def test_report_of_parent_runs_compares_only_their_nested_runs(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    parents, nested = {}, {}
    for stage, accuracies in (("individual", (0.7, 0.8)), ("finetune", (0.9, 0.6))):
        with stage_run(stage, "119,233", {"data_config_hash": DATA.hash()}) as parent:
            for patient, accuracy in zip(("119", "233"), accuracies, strict=True):
                with stage_run(
                    stage, patient, {"data_config_hash": DATA.hash()}, nested=True
                ) as run:
                    _log_result(run, accuracy, {})
                nested[stage, patient] = run.run_id
        parents[stage] = parent.run_id
    _patient_run("individual", "119", 0.99)  # newer, but not under the given parents

    source = DataSource(excerpt_dir, tmp_path, DATA)
    patients = PatientSelection(("119", "233"))
    request = ReportRequest(source, patients, tuple(parents.values()), tmp_path / "out")
    outcome = report(request)
    runs = pd.read_csv(tmp_path / "out" / "runs.csv", dtype=str)
    assert set(runs["run_id"]) == set(nested.values())
    assert outcome.comparison.missing == {"individual": [], "finetune": []}
    assert "pretraining_curves.png" not in {path.name for path in outcome.files}

    other_seed = replace(request, source=replace(source, config=replace(DATA, split_seed=7)))
    with pytest.raises(EcgPlatformError, match="give the --preset and --seed"):
        report(other_seed)


def test_report_without_runs_says_what_to_run(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--data-dir", str(excerpt_dir), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert "Error: no finished individual or finetune runs" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("params", "title", "span"),
    [
        ({}, "epoch 2 kept", None),  # a run from before weight averaging
        ({"train.average_last": 0}, "epoch 2 kept", None),
        ({"train.average_last": 2}, "the last 2 epochs' mean kept", (1.5, 3.5)),
        ({"train.average_last": 10}, "the last 3 epochs' mean kept", (0.5, 3.5)),  # all three
    ],
)
def test_the_pretraining_figure_names_the_weights_kept(
    mlflow_store: str, params: dict[str, int], title: str, span: tuple[float, float] | None
) -> None:
    run_id = _pretrain_run(params)
    figure = pretraining_figure(get_run(run_id))
    assert figure.get_suptitle() == f"Pretraining, run {run_id}: {title}"
    shaded = [(p.get_x(), p.get_x() + p.get_width()) for p in figure.axes[0].patches]
    assert shaded == ([] if span is None else [span])
