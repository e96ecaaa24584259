"""The served pipeline: a companion pyfunc model of a registered model that takes raw samples
and their sampling rate and returns per-window (`paper`) or per-beat (beat presets) results and
the summary, preprocessing inside: the pipeline `predict` builds from the same data config.

It is an MLflow "model from code" (`pipeline_model_code.py`, run when it loads) with two
artifacts: the weights as a plain state dict (loaded with `torch.load(weights_only=True)`) and
`pipeline.json` (the data and model configs of the source model's run). Nothing is unpickled.
It is registered as `<source name>-pipeline`, logged under `pipeline/` of the source's run.

Request body (`mlflow models serve`, POST /invocations, JSON):
`{"inputs": {"samples": [mV, ...], "fs": 360}}`; the answer is
`{"predictions": {"summary": {...}, "windows": {column: [...]}, "beats": {column: [...]}}}`
(a beat model: `{"summary": {...}, "beats": {column: [...]}}`, one row per classified beat).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ecg_platform.data.qrs import DETECTORS, BeatSource, Detector
from ecg_platform.data.signal_input import Recording, recording_from_samples
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.model_io import pip_requirements
from ecg_platform.tracking.registry import register_model
from ecg_platform.tracking.schema import DATA_HASH_TAG, TRACKING
from ecg_platform.tracking.trained_model import (
    TrainedModel,
    data_config_from_dict,
    load_trained_model,
    model_pipeline,
)

PIPELINE_ARTIFACT = "pipeline"
PIPELINE_SUFFIX = "-pipeline"
SOURCE_MODEL_TAG = "source_model"
CODE_FILE = Path(__file__).with_name("pipeline_model_code.py")
REQUEST_HELP = 'send {"inputs": {"samples": [mV, ...], "fs": HZ}}'


# MLflow warns, as the class is defined, that `predict` has no type hints: it has none on
# purpose (see there). MLflow's own "once" filter overrides ours, so the warning is caught.
with warnings.catch_warnings(record=True):

    class EcgPipelineModel(mlflow.pyfunc.PythonModel):
        """Raw samples + rate -> `Prediction.as_dict()`; a bad request: a 400 with its line."""

        def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
            """Build the network from the weights-only state dict and the logged configs."""
            spec = json.loads(Path(context.artifacts["spec"]).read_text())
            weights = torch.load(
                context.artifacts["weights"], map_location="cpu", weights_only=True
            )
            data, model = data_config_from_dict(spec["data"]), ModelConfig(**spec["model"])
            self.pipeline = model_pipeline(data, model, weights)

        # No type hints here: MLflow would turn them into a schema that rejects the request body.
        def predict(self, context, model_input, params=None):
            """Run the pipeline on one recording; the input may name a `detector` (gqrs, xqrs)."""
            try:
                return self.pipeline.run(*_request(model_input)).as_dict()
            except EcgPlatformError as exc:
                raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


def _request(model_input: Any) -> tuple[Recording, BeatSource, Detector]:
    """(recording, beat source, detector) of a request body's `inputs`."""
    if not isinstance(model_input, dict) or not {"samples", "fs"} <= set(model_input):
        raise EcgPlatformError(f"the request needs samples and fs: {REQUEST_HELP}")
    detector = str(model_input.get("detector", "gqrs"))
    if detector not in DETECTORS:
        raise EcgPlatformError(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}")
    recording = recording_from_samples(model_input["samples"], model_input["fs"], "request")
    return recording, "detected", detector  # type: ignore[return-value]  (checked just above)


def log_pipeline_model(source_uri: str) -> tuple[str, str]:
    """Log the companion pipeline of the model at `source_uri` into that model's run and register
    it as `<name>-pipeline` (alias `champion` when the source is its champion); returns the
    registered name and version. Call it after a model is registered, e.g. from training."""
    trained = load_trained_model(source_uri)
    run_id = trained.source.run_id
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / PIPELINE_ARTIFACT
        _save(trained, saved, Path(folder))
        MlflowClient().log_artifacts(run_id, str(saved), PIPELINE_ARTIFACT)
    source = trained.source
    name = f"{source.name or 'ecg-run-' + run_id}{PIPELINE_SUFFIX}"
    tags = {SOURCE_MODEL_TAG: source.uri, DATA_HASH_TAG: trained.data.hash()}
    version = register_model(f"runs:/{run_id}/{PIPELINE_ARTIFACT}", name, tags)
    if source.name and _is_champion(source.name, source.version):
        MlflowClient().set_registered_model_alias(name, TRACKING.champion_alias, version)
    return name, version


def _save(trained: TrainedModel, path: Path, scratch: Path) -> None:
    weights, spec = scratch / "weights.pt", scratch / "pipeline.json"
    torch.save(trained.weights, weights)
    spec.write_text(
        json.dumps(
            {"data": trained.data.to_dict(), "model": dataclasses.asdict(trained.model)}, indent=1
        )
    )
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(CODE_FILE),
        artifacts={"weights": str(weights), "spec": str(spec)},
        pip_requirements=[*pip_requirements(), "scipy", "wfdb"],
        metadata={SOURCE_MODEL_TAG: trained.source.uri},
    )


def _is_champion(name: str, version: str | None) -> bool:
    try:
        champion = MlflowClient().get_model_version_by_alias(name, TRACKING.champion_alias)
    except MlflowException:
        return False
    return str(champion.version) == version
