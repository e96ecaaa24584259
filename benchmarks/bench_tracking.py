"""MLflow overhead per run: each tracking step alone, and one short patient run with and without.

Runs against a throwaway sqlite store in a temporary directory (or `--tracking-uri`).

    python benchmarks/bench_tracking.py [--data-dir DIR] [--patient 119] [--epochs 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace

import mlflow
from entry import run_main
from timing import summary_row, wall_and_cpu

from ecg_platform.data.config import data_config
from ecg_platform.data.loaders import patient_splits
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.engine.runtime import resolve_device
from ecg_platform.engine.trainer import evaluate, fit
from ecg_platform.evaluation.metrics import classification_metrics as metrics
from ecg_platform.tracking.callback import EpochLogger
from ecg_platform.tracking.model_io import log_model
from ecg_platform.tracking.registry import promote_if_better, register_model
from ecg_platform.tracking.runs import stage_run
from ecg_platform.workflows import tracked_run
from ecg_platform.workflows.hyperparams import patient_train_config
from ecg_platform.workflows.request import PER_PATIENT_FIELDS, StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS


def _wall(action: Callable[[], object], repeats: int) -> list[float]:
    return wall_and_cpu(action, repeats)[0]


def _row(name: str, times: list[float]) -> str:
    return summary_row(name, times, 46)


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--patient", default="119")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()

    data = data_config("paper")
    source = DataSource.resolve(data, args.data_dir)
    study = source.load([args.patient], progress=False)
    base = replace(PATIENT_DEFAULTS, epochs=args.epochs, early_stopping=False)
    train, _ = patient_train_config(args.patient, base, PER_PATIENT_FIELDS)
    splits = patient_splits([study.patients[args.patient]], resolve_device(train.device))
    patients = PatientSelection((args.patient,))
    request = StageRequest("individual", source, patients, train=train)
    os.chdir(tempfile.mkdtemp(prefix="bench-tracking-"))
    mlflow.set_tracking_uri(args.tracking_uri or "sqlite:///mlflow.db")

    model = tracked_run.new_model(request, train.seed)
    result = fit(model, splits["train"], splits["val"], train, progress=False, metrics=metrics)
    test = evaluate(model, splits["test"], metrics=metrics)
    example = splits["test"].x[:5].cpu().numpy()
    tags = tracked_run.stage_tags(request)
    rows = []
    with stage_run("individual", args.patient, tags) as run:
        cold = _wall(lambda: log_model(model, example), 1)
        rows.append(_row("log_model, first in the process (cold)", cold))

    def empty_run() -> None:
        with stage_run("individual", args.patient, tags):
            pass

    rows.append(_row("start + end a run (with tags)", _wall(empty_run, args.repeats)))
    with stage_run("individual", args.patient, tags) as run:
        model_uri = log_model(model, example)
        timed: dict[str, Callable[[], object]] = {
            "log ~40 params": lambda: run.log_params(
                tracked_run.config_params(data, model.config, train)
            ),
            "log one epoch's metrics": lambda: EpochLogger(run).on_epoch_end(
                result.history[0], model, True
            ),
            "log checkpoint": lambda: tracked_run.log_checkpoint(run, model),
            "draw + log two figures": lambda: tracked_run.log_figures(run, result, test, "bench"),
            "log_model (pt2 export, warm)": lambda: log_model(model, example),
            "register version + champion rule": lambda: promote_if_better(
                "ecg-bench", register_model(model_uri, "ecg-bench", {"val_loss": 0.5})
            ),
        }
        for name, action in timed.items():
            rows.append(_row(name, _wall(action, args.repeats)))

    def plain() -> object:
        fresh = tracked_run.new_model(request, train.seed)
        fit(fresh, splits["train"], splits["val"], train, progress=False, metrics=metrics)
        return evaluate(fresh, splits["test"], metrics=metrics)

    def tracked() -> object:
        with stage_run("individual", args.patient, tags) as run:
            fresh = tracked_run.new_model(request, train.seed)
            return tracked_run.train_and_track(
                run, "individual", args.patient, fresh, splits, train, data, source.data_dir
            )

    untracked_times, tracked_times = _wall(plain, 2), _wall(tracked, 2)
    rows.append(_row(f"{args.epochs}-epoch run of {args.patient}, no tracking", untracked_times))
    rows.append(_row(f"{args.epochs}-epoch run of {args.patient}, fully tracked", tracked_times))
    overhead = min(tracked_times) - min(untracked_times)

    print(f"MLflow overhead per run, store {mlflow.get_tracking_uri()}")
    print(f"{'operation':<46} {'min s':>8} {'median s':>8} {'n':>4}")
    print("\n".join(rows))
    print(
        f"overhead of a fully tracked {args.epochs}-epoch run: {overhead:.2f} s "
        f"({100 * overhead / min(untracked_times):.0f}% of its training time)"
    )


if __name__ == "__main__":
    run_main(main)
