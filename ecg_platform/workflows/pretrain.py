"""pretrain: one CNN on the pooled train/validation windows of many patients -> `ecg-pretrained`."""

from __future__ import annotations

import torch
from torch import nn

from ecg_platform.engine.inference import predict_proba
from ecg_platform.engine.runtime import resolve_device
from ecg_platform.evaluation.aami import confusion
from ecg_platform.tracking.schema import GENERIC_CONFUSIONS_ARTIFACT
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.resumable_run import resumable_run
from ecg_platform.workflows.tracked_run import (
    LoadedStudy,
    config_params,
    load_request_study,
    new_model,
    stage_tags,
    train_and_track,
)


def run_pretrain(request: StageRequest) -> list[RunOutcome]:
    """Train on the selected patients pooled, test on their pooled test windows, register."""
    tags = stage_tags(request)
    parent, patients = request.parent_run_id, request.patients.label
    loaded = load_request_study(request)  # a bad patient stops here, before any run exists
    params = {"data.patients": ",".join(loaded.records), "data.dir": loaded.data_dir}
    params |= config_params(request.data, request.model, request.train)
    cache_dir = request.source.cache_dir
    with resumable_run(
        "pretrain", patients, tags, params, cache_dir, "pretrain", parent, system_metrics=True
    ) as opened:
        splits = loaded.splits(loaded.records, resolve_device(request.train.device))
        model = new_model(request, request.train.seed)
        outcome = train_and_track(
            opened,
            "pretrain",
            patients,
            model,
            splits,
            request.train,
            request.data,
            loaded.data_dir,
        )
        confusions = generic_confusions(model, loaded, request)
        opened.run.log_dict(confusions, GENERIC_CONFUSIONS_ARTIFACT)
    return [outcome]


def generic_confusions(
    model: nn.Module, loaded: LoadedStudy, request: StageRequest
) -> dict[str, list[list[int]]]:
    """The pretrained model alone on each patient's own test part ("generic"), as one confusion
    matrix (rows: true class) per patient: the baseline that patient adaptation must beat."""
    device = resolve_device(request.train.device)
    classes = len(request.data.class_names)
    matrices = {}
    for record in loaded.records:
        test = loaded.splits([record], device)["test"]
        probabilities = torch.from_numpy(predict_proba(model, test.x, test.features))
        predicted = probabilities.argmax(1) if classes > 2 else probabilities >= 0.5
        matrix = confusion(test.y.cpu().numpy(), predicted.numpy().astype(int), classes)
        matrices[record] = matrix.tolist()
    return matrices
