"""A registered or logged model with everything needed to apply it to new recordings: its exact
weights, and the data and model configs of the run that trained it (never re-typed by a user)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ecg_platform.data.beat_config import BeatConfig, BeatExtraction
from ecg_platform.data.config import DataConfig, ProtocolConfig
from ecg_platform.engine.beat_pipeline import BeatPipeline
from ecg_platform.engine.pipeline import WindowPipeline, build_pipeline
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import Classifier
from ecg_platform.models.registry import trained_model
from ecg_platform.tracking.model_io import CHECKPOINT_SUFFIXES, download_model, read_state_dict
from ecg_platform.tracking.registry import ModelSource, existing_model_source

DATA_CONFIG_ARTIFACT = "data_config.json"
MODEL_PARAM_PREFIX = "model."


@dataclass(frozen=True)
class TrainedModel:
    """Exact source, weights (CPU tensors), and the configs its run logged."""

    source: ModelSource
    weights: dict[str, torch.Tensor]
    data: ProtocolConfig
    model: ModelConfig

    def network(self) -> Classifier:
        """The network with these weights, in eval mode, for callers that bring their own inputs."""
        return trained_model(self.model, self.data.input_length, self.weights)

    def pipeline(self) -> WindowPipeline | BeatPipeline:
        """The network with these weights, in the pipeline of its data config's preset."""
        return model_pipeline(self.data, self.model, self.weights)


def model_pipeline(
    data: ProtocolConfig, model: ModelConfig, weights: Mapping[str, torch.Tensor]
) -> WindowPipeline | BeatPipeline:
    """The pipeline of a trained network given by its configs and weights: what `predict` and
    the served pipeline model both run."""
    return build_pipeline(trained_model(model, data.input_length, weights), data)


def load_trained_model(uri: str) -> TrainedModel:
    """The model behind `uri` (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `runs:/ID/model`,
    `runs:/ID/checkpoint/best.pt`) with its run's data and model configs; one line when any
    part is missing or does not fit."""
    source = existing_model_source(uri)
    if source.run_id is None:
        raise EcgPlatformError(
            f"{uri} is no registry or run URI; predict reads the data config from the model's run"
        )
    run = MlflowClient().get_run(source.run_id)
    data = data_config_of_run(source.run_id, uri)
    model = model_config_of_params(run.data.params)
    local = download_model(source.uri)
    check_input_length(local, source.uri, data)
    return TrainedModel(source, read_state_dict(local, source.uri), data, model)


def data_config_of_run(run_id: str, uri: str) -> ProtocolConfig:
    """The data config (the `paper` preset's or a beat preset's) the run logged as
    `data_config.json`."""
    try:
        logged = mlflow.artifacts.load_dict(f"runs:/{run_id}/{DATA_CONFIG_ARTIFACT}")
    except (MlflowException, OSError) as exc:
        raise EcgPlatformError(
            f"the run of {uri} has no readable {DATA_CONFIG_ARTIFACT}: {exc}"
        ) from None
    try:
        return data_config_from_dict(logged)
    except (TypeError, AttributeError) as exc:
        raise EcgPlatformError(
            f"{uri} was trained on preset {logged.get('preset', '?')!r}, whose data config "
            f"predict cannot apply: {exc}"
        ) from None


def data_config_from_dict(logged: dict[str, Any]) -> ProtocolConfig:
    """`to_dict()` of either config read back (lists become tuples again, a beat config's
    `extraction` a `BeatExtraction`); a field either lacks raises TypeError."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in logged.items()}
    if "extraction" in values:
        return BeatConfig(**values | {"extraction": BeatExtraction(**values["extraction"])})
    return DataConfig(**values)


def model_config_of_params(params: dict[str, str]) -> ModelConfig:
    """The `ModelConfig` from a run's `model.*` params (typed like the config's defaults)."""
    defaults = ModelConfig()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(ModelConfig):
        logged = params.get(MODEL_PARAM_PREFIX + field.name)
        if logged is not None:
            values[field.name] = type(getattr(defaults, field.name))(logged)
    return ModelConfig(**values)


def check_input_length(local: Path, uri: str, data: ProtocolConfig) -> None:
    """Refuse a model (`local`, the download of `uri`) whose signature takes another input
    length than its data config makes (a window or beat, followed by its side features if any)."""
    if uri.endswith(CHECKPOINT_SUFFIXES):
        return
    try:
        signature = mlflow.models.Model.load(local).signature
    except (MlflowException, OSError) as exc:
        raise EcgPlatformError(f"cannot read the model at {uri}: {exc}") from None
    shape = signature.inputs.inputs[0].shape if signature is not None else None
    if shape is None or shape[-1] != data.input_length + data.side_features:
        side = f" followed by {data.side_features} side features" if data.side_features else ""
        raise EcgPlatformError(
            f"model {uri} takes inputs of shape {shape}, but its data config (preset "
            f"{data.preset!r}) makes windows of {data.input_length} samples{side}"
        )
