"""pretrain: one CNN on the pooled train/validation windows of many patients -> `ecg-pretrained`."""

from __future__ import annotations

from ecg_platform.engine.runtime import resolve_device
from ecg_platform.tracking.runs import stage_run
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.tracked_run import (
    load_request_study,
    new_model,
    stage_tags,
    train_and_track,
)


def run_pretrain(request: StageRequest) -> list[RunOutcome]:
    """Train on the selected patients pooled, test on their pooled test windows, register."""
    tags = stage_tags(request)
    parent, patients = request.parent_run_id, request.patients.label
    with stage_run("pretrain", patients, tags, "pretrain", parent_run_id=parent) as run:
        loaded = load_request_study(request)
        run.log_params({"data.patients": ",".join(loaded.records), "data.dir": loaded.data_dir})
        splits = loaded.splits(loaded.records, resolve_device(request.train.device))
        model = new_model(request, request.train.seed)
        outcome = train_and_track(
            run, "pretrain", patients, model, splits, request.train, request.data
        )
    return [outcome]
