"""Per-patient training in worker processes: processes x threads on this machine.

Trains the same patients (study-table settings, a fixed number of epochs, no MLflow) with one
process using 1 or all cores' threads, and with one worker process per core (1 thread each), the
way `reproduce` and `grid-search` run them. Prints wall time (including starting the workers),
the sum of the patients' training times, and the speed-up over one process with one thread.

    python benchmarks/bench_parallel.py [--data-dir ../shared/data/mitdb] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch
from entry import run_main

from ecg_platform.data.config import data_config, resolve_cache_dir
from ecg_platform.data.dataset import load_study
from ecg_platform.data.loaders import patient_splits
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.metrics import classification_metrics as metrics
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.workflows.executor import Job, LocalPoolExecutor, cpu_cores
from ecg_platform.workflows.settings import PATIENT_DEFAULTS, STUDY_HYPERPARAMS

PATIENTS = "105,106,201,203,208,221"  # batch sizes 4, 16, 32, 4, 4, 32 in the study's table


def train_patient(job: tuple[Path, str, int]) -> float:
    """Train one patient for a fixed number of epochs; the seconds its epochs took."""
    data_dir, patient, epochs = job
    study = load_study(data_dir, data_config("paper"), [patient], resolve_cache_dir(), False)
    splits = patient_splits([study.patients[patient]], "cpu")
    config = PATIENT_DEFAULTS.replace(
        epochs=epochs, early_stopping=False, **asdict(STUDY_HYPERPARAMS[patient])
    )
    seed_everything(config.seed)
    result = fit(CNN1D(), splits["train"], splits["val"], config, progress=False, metrics=metrics)
    return sum(record.seconds for record in result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--patients", default=PATIENTS)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        Job(p, train_patient, (args.data_dir.resolve(), p, args.epochs))
        for p in args.patients.split(",")
    ]
    cores = cpu_cores()
    cases = [(1, 1), (1, cores), (cores, 1)]
    print(f"{len(jobs)} patients x {args.epochs} epochs on {cores} cores")
    print(f"{'processes x threads':>20} {'wall s':>8} {'training s':>11} {'speed-up':>9}")
    baseline = None
    for processes, threads in cases:
        torch.set_num_threads(threads)  # the in-process case; workers set their own
        started = time.perf_counter()
        with LocalPoolExecutor(processes) as executor:
            done = executor.run(jobs, label=f"{processes}x{threads}")
        wall = time.perf_counter() - started
        baseline = baseline or wall
        training = sum(result.value or 0.0 for result in done.values())
        case = f"{processes} x {threads}"
        print(f"{case:>20} {wall:>8.1f} {training:>11.1f} {baseline / wall:>8.2f}x")


if __name__ == "__main__":
    run_main(main)
