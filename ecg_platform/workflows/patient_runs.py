"""A stage over patients: one patient's run is the request's top run; several patients get a
parent run with one nested run each, made by an executor's workers."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

from ecg_platform.data.patients import PatientSelection
from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.workflows.executor import Job, make_executor
from ecg_platform.workflows.executor_spec import Workers
from ecg_platform.workflows.progress import announce
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.tracked_run import load_request_study

TrainOne = Callable[[StageRequest], RunOutcome]  # a module-level function: it travels to workers


def outer_run(request: StageRequest, tags: Mapping[str, str]) -> AbstractContextManager[TrackedRun]:
    """The request's top run: the patient's own run, or the parent of one run per patient."""
    patients = request.patients.label
    name = f"{request.stage}-{patients}"
    return stage_run(
        request.stage, patients, tags, run_name=name, parent_run_id=request.parent_run_id
    )


def patient_jobs(
    request: StageRequest, records: Sequence[str], parent_run_id: str, train_one: TrainOne
) -> list[Job[RunOutcome]]:
    """One job per patient: `train_one` of the patient's own request, whose run (its top run,
    named `<stage>-<patient>`) nests under `parent_run_id`."""
    return [
        Job(
            patient,
            train_one,
            replace(request, patients=PatientSelection((patient,)), parent_run_id=parent_run_id),
            parent_run_id,
        )
        for patient in records
    ]


def run_patients(
    request: StageRequest, train_one: TrainOne, workers: Workers, tags: Mapping[str, str]
) -> list[RunOutcome]:
    """Every requested patient's run nested under one parent run (tagged `tags`), `workers` at
    a time (a count: local processes; or an `ExecutorSpec`, e.g. Ray), and their mean and
    median test balanced accuracy on the parent. The patients are checked before the parent
    run exists; a failed run does not stop the others, and the stage fails at the end, naming
    them."""
    records = load_request_study(request).records
    with outer_run(request, tags) as outer:
        return _run_nested(outer, request, records, train_one, workers)


def _run_nested(
    outer: TrackedRun,
    request: StageRequest,
    records: Sequence[str],
    train_one: TrainOne,
    workers: Workers,
) -> list[RunOutcome]:
    outer.log_params({"data.patients": ",".join(records)})
    with make_executor(workers) as executor:
        announce(f"{request.stage}: {len(records)} patients on {executor.describe()}")
        jobs = patient_jobs(request, records, outer.run_id, train_one)
        results = executor.run(jobs, request.stage)
    outcomes = [result.value for result in results.values() if result.value is not None]
    if outcomes:
        log_patients_summary(outer, outcomes)
    failed = [f"{name}: {result.error}" for name, result in results.items() if not result.ok]
    if failed:
        raise EcgPlatformError(f"{len(failed)} patient run(s) failed: " + "; ".join(failed))
    return outcomes


def log_patients_summary(outer: TrackedRun, outcomes: Sequence[RunOutcome]) -> None:
    """The mean and median test balanced accuracy of the patients' runs, on their parent."""
    accuracies = [outcome.test_metrics["balanced_accuracy"] for outcome in outcomes]
    outer.log_metrics(
        {
            "test_balanced_accuracy_mean": statistics.fmean(accuracies),
            "test_balanced_accuracy_median": statistics.median(accuracies),
            "patients": len(outcomes),
        }
    )
