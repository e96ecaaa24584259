"""individual: one CNN per patient, trained from scratch on that patient's windows only."""

from __future__ import annotations

from ecg_platform.engine.runtime import resolve_device
from ecg_platform.workflows.executor_spec import Workers
from ecg_platform.workflows.hyperparams import patient_settings
from ecg_platform.workflows.patient_runs import run_patients
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.tracked_run import (
    load_request_study,
    new_model,
    patient_training_run,
    stage_tags,
    train_and_track,
)


def run_individual(request: StageRequest, workers: Workers = 1) -> list[RunOutcome]:
    """Train, test and register `ecg-individual-<patient>` for each requested patient; several
    patients in nested runs, `workers` at a time."""
    if not request.several_patients:
        return [train_individual(request)]
    return run_patients(request, train_individual, workers, stage_tags(request))


def train_individual(request: StageRequest) -> RunOutcome:
    """The run of the request's one patient (nested under `request.parent_run_id`, if any)."""
    loaded = load_request_study(request)  # a bad patient stops here, before any run exists
    patient = loaded.records[0]
    train, origin = patient_settings(patient, request)
    params = origin | {"data.dir": loaded.data_dir}
    with patient_training_run(request, train, stage_tags(request) | origin, params) as opened:
        model = new_model(request, train.seed)
        splits = loaded.splits([patient], resolve_device(train.device))
        return train_and_track(
            opened, "individual", patient, model, splits, train, request.data, loaded.data_dir
        )
