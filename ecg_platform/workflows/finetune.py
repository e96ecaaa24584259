"""finetune: per patient, the pretrained CNN with its encoder frozen and only its head trained."""

from __future__ import annotations

import functools

import torch

from ecg_platform.engine.runtime import resolve_device
from ecg_platform.models.cnn1d import load_pretrained
from ecg_platform.tracking.model_io import load_state_dict
from ecg_platform.tracking.registry import ModelSource, pretrained_source
from ecg_platform.tracking.schema import (
    PRETRAINED_RUN_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
)
from ecg_platform.tracking.worker_runs import tracking_uri
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


def run_finetune(
    request: StageRequest, pretrained_uri: str, force: bool, workers: Workers = 1
) -> list[RunOutcome]:
    """Fine-tune, test and register `ecg-finetuned-<patient>` for each requested patient; several
    patients in nested runs, `workers` at a time, all from the version `pretrained_uri` named
    when they started."""
    if not request.several_patients:
        return [train_finetuned(request, pretrained_uri, force)]
    source = pretrained_source(pretrained_uri, request.data, force)
    pretrained_weights(source.uri)  # unloadable: stop before any run exists
    train_one = functools.partial(
        train_finetuned, pretrained_uri=pretrained_uri, force=force, source=source
    )
    tags = stage_tags(request) | pretrained_tags(source)
    return run_patients(request, train_one, workers, tags)


def train_finetuned(
    request: StageRequest, pretrained_uri: str, force: bool, source: ModelSource | None = None
) -> RunOutcome:
    """The run of the request's one patient (nested under `request.parent_run_id`, if any), from
    `source`, the exact model behind `pretrained_uri` (resolved here when not given)."""
    source = source or pretrained_source(pretrained_uri, request.data, force)
    weights = pretrained_weights(source.uri)
    loaded = load_request_study(request)  # everything checked before the run exists
    patient = loaded.records[0]
    train, origin = patient_settings(patient, request)
    params = origin | {
        "data.dir": loaded.data_dir,
        "pretrained.requested": pretrained_uri,
        "pretrained.uri": source.uri,
        "pretrained.forced": force,
    }
    tags = stage_tags(request) | pretrained_tags(source) | origin
    with patient_training_run(request, train, tags, params) as opened:
        model = new_model(request, train.seed)
        load_pretrained(model, weights)
        splits = loaded.splits([patient], resolve_device(train.device))
        return train_and_track(
            opened, "finetune", patient, model, splits, train, request.data, loaded.data_dir
        )


def pretrained_weights(uri: str) -> dict[str, torch.Tensor]:
    """The weights of an exact pretrained model, loaded once per process and tracking store."""
    return _weights_in_store(tracking_uri(), uri)


@functools.cache
def _weights_in_store(store: str, uri: str) -> dict[str, torch.Tensor]:
    """Keyed by the store too: `models:/ecg-pretrained/1` of one store is not another's."""
    return load_state_dict(uri)


def pretrained_tags(source: ModelSource) -> dict[str, str]:
    """The tags a finetune run (and its parent) carries for the model it starts from."""
    return {
        PRETRAINED_URI_TAG: source.uri,
        PRETRAINED_VERSION_TAG: source.version or "",
        PRETRAINED_RUN_TAG: source.run_id or "",
    }
