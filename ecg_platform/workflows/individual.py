"""individual: one CNN per patient, trained from scratch on that patient's windows only."""

from __future__ import annotations

from ecg_platform.engine.runtime import resolve_device
from ecg_platform.tracking.runs import TrackedRun
from ecg_platform.workflows.hyperparams import patient_settings
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.tracked_run import (
    for_each_patient,
    load_request_study,
    new_model,
    outer_run,
    stage_tags,
    train_and_track,
)


def run_individual(request: StageRequest) -> list[RunOutcome]:
    """Train, test and register `ecg-individual-<patient>` for each requested patient."""
    tags = stage_tags(request)
    with outer_run(request, tags) as outer:
        loaded = load_request_study(request)
        device = resolve_device(request.train.device)

        def run_one(run: TrackedRun, patient: str) -> RunOutcome:
            train, origin = patient_settings(patient, request)
            run.set_tags(origin)
            run.log_params(origin | {"data.dir": loaded.data_dir})
            model = new_model(request, train.seed)
            splits = loaded.splits([patient], device)
            return train_and_track(run, "individual", patient, model, splits, train, request.data)

        return for_each_patient(outer, request, loaded.records, tags, run_one)
