"""finetune: per patient, the pretrained CNN with its encoder frozen and only its head trained."""

from __future__ import annotations

from ecg_platform.data.config import DataConfig
from ecg_platform.engine.runtime import resolve_device
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import load_pretrained
from ecg_platform.tracking.model_io import load_state_dict
from ecg_platform.tracking.registry import ModelSource, resolve_model_source
from ecg_platform.tracking.runs import TrackedRun
from ecg_platform.tracking.schema import (
    PRETRAINED_RUN_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
    TRACKING,
)
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


def resolve_pretrained(uri: str, data: DataConfig, force: bool) -> ModelSource:
    """The exact pretrained model behind `uri`, checked against this run's data config."""
    source = resolve_model_source(uri)
    if source is None and uri == TRACKING.default_pretrained_uri:
        raise EcgPlatformError(
            "no pretrained model yet: run `mlflow run . -e pretrain` (or `ecg-platform pretrain`)"
            " first"
        )
    if source is None:
        raise EcgPlatformError(f"no model at {uri}: check its name and version or alias")
    if source.data_config_hash != data.hash() and not force:
        raise EcgPlatformError(
            f"pretrained model {source.uri} was trained under data config "
            f"{source.data_config_hash or '(unknown)'} but this run uses {data.hash()} (preset "
            f"{data.preset!r}, seed {data.split_seed}); its training windows may include this "
            "run's test windows. Pretrain with the same settings, or pass --force"
        )
    return source


def run_finetune(request: StageRequest, pretrained_uri: str, force: bool) -> list[RunOutcome]:
    """Fine-tune, test and register `ecg-finetuned-<patient>` for each requested patient."""
    with outer_run(request, stage_tags(request)) as outer:
        source = resolve_pretrained(pretrained_uri, request.data, force)
        weights = load_state_dict(source.uri)
        tags = stage_tags(request) | {
            PRETRAINED_URI_TAG: source.uri,
            PRETRAINED_VERSION_TAG: source.version or "",
            PRETRAINED_RUN_TAG: source.run_id or "",
        }
        outer.set_tags(tags)
        loaded = load_request_study(request)
        device = resolve_device(request.train.device)

        def run_one(run: TrackedRun, patient: str) -> RunOutcome:
            train, origin = patient_settings(patient, request)
            run.set_tags(origin)
            run.log_params(
                origin
                | {
                    "data.dir": loaded.data_dir,
                    "pretrained.requested": pretrained_uri,
                    "pretrained.uri": source.uri,
                    "pretrained.forced": force,
                }
            )
            model = new_model(request, train.seed)
            load_pretrained(model, weights)
            splits = loaded.splits([patient], device)
            return train_and_track(run, "finetune", patient, model, splits, train, request.data)

        return for_each_patient(outer, request, loaded.records, tags, run_one)
