"""Logging a trained network as an MLflow model, and loading weights back from any model URI.

Models are saved in the `pt2` format (`torch.export`): they load, also through
`mlflow.pyfunc.load_model`, without unpickling code and without this package installed. Loading
refuses anything else before deserializing it: a pickle-format model runs code when unpickled.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import torch
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from ecg_platform.errors import EcgPlatformError

MODEL_ARTIFACT = "model"
CHECKPOINT_SUFFIXES = (".pt", ".pth")
MODEL_PIP_PACKAGES = ("torch", "numpy")
PT2_FILE = "model.pt2"
WRAPPED_PREFIX = "model."  # the weights of a model logged inside WindowThenFeatures
_RUN_ARTIFACT_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<name>[^/]+)/?$")
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
# `mlflow.pyfunc.load_model(uri, model_config=PYFUNC_CONFIG)`: the export holds CPU weights, which
# pyfunc would refuse to move to CUDA on a GPU machine.
PYFUNC_CONFIG = {"device": "cpu"}


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of a logged model (explicit: MLflow inferring them is slow)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in MODEL_PIP_PACKAGES]


def model_signature(model: torch.nn.Module, input_example: np.ndarray) -> ModelSignature:
    """float32 tensors in and out, any batch size (the example fixes the other dimensions)."""
    with torch.no_grad():
        output = model(torch.from_numpy(input_example)).numpy()
    float32 = np.dtype(np.float32)
    inputs = Schema([TensorSpec(float32, (-1, *input_example.shape[1:]))])
    outputs = Schema([TensorSpec(float32, (-1, *output.shape[1:]))])
    return ModelSignature(inputs=inputs, outputs=outputs)


class WindowThenFeatures(torch.nn.Module):
    """A model with side features as one exportable input: (n, 1, L + E), each window followed
    by its E side features (MLflow's pyfunc serves one tensor; the weights are the model's)."""

    def __init__(self, model: torch.nn.Module, input_length: int) -> None:
        super().__init__()
        self.model = model
        self.input_length = input_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Split the input, then the model's probabilities."""
        return self.model(x[..., : self.input_length], x[:, 0, self.input_length :])


def log_model(
    model: torch.nn.Module, input_example: np.ndarray, features_example: np.ndarray | None = None
) -> str:
    """Log `model` (a CPU copy, in eval mode) to the active run; returns its model URI. A model
    with side features is logged as `WindowThenFeatures`, its input the window then them.

    `input_example` needs at least two rows so that the exported batch size stays dynamic.
    """
    cpu_model = copy.deepcopy(model).cpu().eval()
    example = np.ascontiguousarray(input_example, dtype=np.float32)
    if features_example is not None:
        cpu_model = WindowThenFeatures(cpu_model, example.shape[-1]).eval()
        side = np.asarray(features_example, dtype=np.float32)[:, None, :]
        example = np.ascontiguousarray(np.concatenate([example, side], axis=-1))
    info = mlflow.pytorch.log_model(
        cpu_model,
        name=MODEL_ARTIFACT,
        signature=model_signature(cpu_model, example),
        input_example=example,
        pip_requirements=pip_requirements(),
        serialization_format="pt2",
        # MLflow would load the model back and predict the example, 1.1 s of a run's 3.8 s
        # log_model, and only warn if that failed; tests/test_tracking_registry.py serves it.
        validate_serving_input=False,
    )
    return info.model_uri


def download_model(uri: str) -> Path:
    """The model folder (or state-dict file) behind `uri`, local: one copy that every part of
    the model is read from."""
    try:
        return Path(mlflow.artifacts.download_artifacts(logged_model_uri(uri)))
    except (MlflowException, OSError) as exc:
        raise EcgPlatformError(f"cannot load weights from {uri}: {exc}") from exc


def logged_model_uri(uri: str) -> str:
    """`runs:/ID/NAME`, where the run logged a model named NAME, as that model's own
    `models:/MODEL_ID`; any other URI as it is. MLflow resolves a `runs:/` model URI by
    searching every logged model of the run's experiment, on each download: 1.2 s of a 1.9 s
    load on a 5-repeat store, against 0.1 s for the model's own URI."""
    match = _RUN_ARTIFACT_URI.match(uri)
    if match is None:
        return uri
    client = MlflowClient()
    for output in client.get_run(match["run_id"]).outputs.model_outputs:
        logged = client.get_logged_model(output.model_id)
        if logged.name == match["name"]:
            return logged.model_uri
    return uri


def load_state_dict(uri: str) -> dict[str, torch.Tensor]:
    """Weights from an MLflow model URI, or from a state-dict file (`.pt`/`.pth`, any URI)."""
    return read_state_dict(download_model(uri), uri)


def read_state_dict(local: Path, uri: str) -> dict[str, torch.Tensor]:
    """Weights from `local`, the download of `uri` (`download_model`).

    A state-dict file is loaded with `weights_only=True`; a model must be one of the platform's
    own pt2 models (`check_pickle_free`), and its archive is loaded with MLflow's pickle
    deserialization switched off, so that MLflow validates every record before torch reads it.
    """
    try:
        if uri.endswith(CHECKPOINT_SUFFIXES):
            return torch.load(local, map_location="cpu", weights_only=True)
        check_pickle_free(local, uri)
        with _pickle_disallowed():
            weights = mlflow.pytorch.load_model(str(local)).state_dict()
        wrapped = all(name.startswith(WRAPPED_PREFIX) for name in weights)
        return (
            {name.removeprefix(WRAPPED_PREFIX): w for name, w in weights.items()}
            if wrapped
            else weights
        )
    except (MlflowException, OSError, RuntimeError, pickle.UnpicklingError) as exc:
        raise EcgPlatformError(f"cannot load weights from {uri}: {exc}") from exc


def check_pickle_free(model_dir: Path, uri: str) -> None:
    """Refuse, before anything is deserialized, a model that is not a plain pt2 PyTorch model:
    no pickle file (`model.pth`), no bundled code (MLflow puts it on `sys.path`)."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise EcgPlatformError(f"refusing {uri}: no MLmodel file there, so it is no MLflow model")
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    pytorch = flavors.get("pytorch")
    if not isinstance(pytorch, dict):
        raise EcgPlatformError(
            f"refusing {uri}: its flavors are {', '.join(sorted(flavors)) or 'none'}; the "
            "platform loads only PyTorch models in the pickle-free pt2 format"
        )
    with_code = [
        name for name, conf in flavors.items() if isinstance(conf, dict) and conf.get("code")
    ]
    if with_code:
        raise EcgPlatformError(
            f"refusing {uri}: it bundles code ({', '.join(sorted(with_code))} flavor), which "
            "loading would import; the platform loads only pt2 models without code"
        )
    data_dir = model_dir / str(pytorch.get("model_data", "data"))
    found = sorted(path.name for path in data_dir.iterdir()) if data_dir.is_dir() else []
    if found != [PT2_FILE]:
        raise EcgPlatformError(
            f"refusing {uri}: expected only {PT2_FILE} in its model data, found "
            f"{', '.join(found) or 'nothing'} (a pickle-format model would run code when loaded);"
            " log models with serialization_format='pt2'"
        )


@contextmanager
def _pickle_disallowed() -> Iterator[None]:
    """MLflow's own switch off for the duration: it then checks that a pt2 archive's records
    are JSON, text or tensors before `torch.export.load` unpickles them."""
    before = os.environ.get(PICKLE_SWITCH)
    os.environ[PICKLE_SWITCH] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[PICKLE_SWITCH]
        else:
            os.environ[PICKLE_SWITCH] = before
