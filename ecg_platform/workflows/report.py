"""The report: the comparison of the runs `report_runs` selects, its files, an `ecg-report` run.

By default each patient's latest finished individual and finetune runs of one data config are
compared; given parent runs, their nested runs are, one repeat per training seed. Patients
without a run are listed as missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.source import Study
from ecg_platform.engine.history import EpochRecord
from ecg_platform.errors import EcgPlatformError
from ecg_platform.evaluation.comparison import (
    Comparison,
    compare,
    comparison_metrics,
    over_repeats,
    repeats_note,
    write_report,
)
from ecg_platform.evaluation.metrics import summary_metric_names
from ecg_platform.evaluation.plots import training_curves_figure
from ecg_platform.tracking.run_search import (
    RunRecord,
    metric_histories,
)
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    HPARAMS_SOURCE_TAG,
    PRETRAIN_RUN_TAG,
    PRETRAINED_VERSION_TAG,
)
from ecg_platform.workflows.aami_report import (
    AAMI_MARKDOWN,
    arm_matrices,
    summarise_arms,
    write_aami_report,
)
from ecg_platform.workflows.report_runs import RunSet, latest_runs, runs_of_parents
from ecg_platform.workflows.request import ReportRequest
from ecg_platform.workflows.settings import HYPERPARAM_FIELDS
from ecg_platform.workflows.tracked_run import train_param

CURVE_METRICS = ("loss", "balanced_accuracy")
PRETRAINING_FIGURE = "pretraining_curves.png"
RUNS_FILE = "runs.csv"
RUN_COLUMNS = {
    "hparams_source": ("tags", HPARAMS_SOURCE_TAG),
    **{name: ("params", train_param(name)) for name in HYPERPARAM_FIELDS},
    "pretrained_version": ("tags", PRETRAINED_VERSION_TAG),
}


@dataclass(frozen=True)
class ReportOutcome:
    """The written report and the run it was logged to."""

    run_id: str
    out_dir: Path
    files: list[Path]
    comparison: Comparison

    def summary(self) -> str:
        """A few lines for the terminal."""
        means = self.comparison.summary["mean"]
        lines = [
            f"mean test balanced accuracy: individual "
            f"{means['individual_balanced_accuracy']:.4f}, fine-tuned "
            f"{means['finetune_balanced_accuracy']:.4f}; paired Wilcoxon p = "
            f"{self.comparison.wilcoxon_pvalue:.3g}"
        ]
        lines += [
            f"missing {mode} runs: {', '.join(patients)}"
            for mode, patients in self.comparison.missing.items()
            if patients
        ]
        lines.append(f"wrote {len(self.files)} files to {self.out_dir}; report run {self.run_id}")
        return "\n".join(lines)


def results_frame(run_set: RunSet, study: Study) -> pd.DataFrame:
    """One row per run: patient, mode, inputs (windows or beats), abnormal share, test metrics
    (those of the protocol's class count), epochs run."""
    test_metrics = summary_metric_names(len(study.config.class_names))
    rows = []
    for mode, runs in run_set.runs.items():
        for patient, run in runs.items():
            inputs, abnormal_share = study.inputs_and_abnormal_share(patient)
            metrics = {name: run.metrics.get(f"test_{name}", math.nan) for name in test_metrics}
            rows.append(
                {"patient": patient, "mode": mode, "windows": inputs}
                | {"abnormal_share": abnormal_share, **metrics}
                | {"epochs": run.metrics.get("epochs_run", math.nan)}
            )
    return pd.DataFrame.from_records(rows)


def runs_table(run_sets: Sequence[RunSet]) -> pd.DataFrame:
    """Which run each result comes from (and of which repeat), and the settings it used."""
    rows = []
    for repeat, run_set in enumerate(run_sets, start=1):
        for mode, runs in run_set.runs.items():
            for patient, run in sorted(runs.items()):
                row = {"patient": patient, "mode": mode, "repeat": repeat, "run_id": run.run_id}
                for column, (kind, key) in RUN_COLUMNS.items():
                    row[column] = getattr(run, kind).get(key, "")
                rows.append(row)
    return pd.DataFrame.from_records(rows)


def pretraining_figure(run: RunRecord) -> Figure:
    """Pretraining loss and balanced accuracy per epoch, the kept epoch marked (Figure 7)."""
    keys = [f"{split}_{metric}" for split in ("train", "val") for metric in CURVE_METRICS]
    history = metric_histories(run.run_id, [*keys, "lr", "epoch_seconds"])
    records = [
        EpochRecord(
            epoch,
            history["lr"].get(epoch, math.nan),
            {metric: history[f"train_{metric}"][epoch] for metric in CURVE_METRICS},
            {metric: history[f"val_{metric}"][epoch] for metric in CURVE_METRICS},
            history["epoch_seconds"].get(epoch, math.nan),
        )
        for epoch in sorted(history["val_loss"])
    ]
    best_epoch = int(run.metrics.get("best_epoch", 0))
    asked = int(run.params.get(train_param("average_last"), 0))  # older runs: none
    averaged = min(asked, len(records))  # all epochs when there were fewer
    figure = training_curves_figure(records, best_epoch, averaged)
    kept = f"the last {averaged} epochs' mean" if averaged else f"epoch {best_epoch}"
    figure.suptitle(f"Pretraining, run {run.run_id}: {kept} kept")
    return figure


def write_study_report(
    run_sets: Sequence[RunSet], study: Study, patients: list[str], out_dir: Path
) -> tuple[Comparison, list[Path]]:
    """Compare the run sets (one per repeat: per patient the mean over repeats), write
    report.md, the CSVs and every figure into `out_dir`."""
    per_repeat = [results_frame(run_set, study) for run_set in run_sets]
    results = pd.concat(per_repeat)
    if results.empty:
        raise EcgPlatformError(
            f"no finished individual or finetune runs of data config {study.config.hash()} for "
            f"patients {', '.join(patients)}: run `mlflow run . -e individual` / `-e finetune` "
            "(or `-e reproduce`) first"
        )
    comparison = compare(results, patients)
    figures = {}
    notes = [f"Data config `{study.config.hash()}` (preset `{study.config.preset}`)."]
    if len(run_sets) > 1:
        notes.append(f"{len(run_sets)} repeats (training seeds); per patient their mean.")
        notes.append(repeats_note(over_repeats(per_repeat)))
    pretrain = run_sets[0].pretrain
    if pretrain is not None:
        figures[PRETRAINING_FIGURE] = pretraining_figure(pretrain)
        notes.append(f"Pretraining run `{pretrain.run_id}` (of the first repeat).")
    else:
        notes.append("No pretraining run found: no pretraining curves.")
    notes.append(f"Runs compared: `{RUNS_FILE}`.")
    aami = None
    if isinstance(study.config, BeatConfig) and study.config.label_set == "aami":
        repeats = [arm_matrices(run_set.runs, run_set.pretrain) for run_set in run_sets]
        aami = summarise_arms(repeats, study.config, patients)
        if headline := aami.headline():
            notes.insert(1, headline)
        notes.append(f"VEB and SVEB of every arm beside the published figures: `{AAMI_MARKDOWN}`.")
    files = write_report(comparison, out_dir, figures, notes)
    runs_table(run_sets).to_csv(out_dir / RUNS_FILE, index=False)
    files.append(out_dir / RUNS_FILE)
    if aami is not None:
        files += write_aami_report(aami, out_dir)
    return comparison, files


def report(request: ReportRequest, run_sets: Sequence[RunSet] | None = None) -> ReportOutcome:
    """Collect the runs (or take `run_sets`, one per repeat), write the report and log it to an
    `ecg-report` run (artifacts under `report/`), which exists only once the runs were found."""
    data = request.data
    tags = {DATA_HASH_TAG: data.hash()}
    name = "report"
    label, parent_run_id = request.patients.label, request.parent_run_id
    study = request.source.load()
    patients = study.select(request.patients)
    if run_sets is None and request.parents:
        run_sets = runs_of_parents(request.parents, data, patients)
    elif run_sets is None:
        run_sets = [latest_runs(data, patients)]
    with stage_run(name, label, tags, name, parent_run_id=parent_run_id) as run:
        comparison, files = write_study_report(run_sets, study, patients, request.out_dir)
        data_dir = request.source.data_dir
        run.log_params(
            {"data.preset": data.preset, "data.config_hash": data.hash(), "data.dir": data_dir}
            | {
                "report.parents": ",".join(request.parents) or "latest",
                "report.out": request.out_dir,
            }
        )
        if run_sets[0].pretrain is not None:
            run.set_tags({PRETRAIN_RUN_TAG: run_sets[0].pretrain.run_id})
        run.log_metrics(comparison_metrics(comparison))
        for path in files:
            run.log_file(path, "report")
    return ReportOutcome(run.run_id, request.out_dir, files, comparison)
