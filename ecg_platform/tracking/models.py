"""Logging a trained network as an MLflow model, and loading weights back from any model URI.

Models are saved in the `pt2` format (`torch.export`): they load, also through
`mlflow.pyfunc.load_model`, without unpickling code and without this package installed.
"""

from __future__ import annotations

import copy
import pickle
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from ecg_platform.errors import EcgPlatformError

MODEL_ARTIFACT = "model"
CHECKPOINT_SUFFIXES = (".pt", ".pth")
MODEL_PIP_PACKAGES = ("torch", "numpy")
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


def log_model(model: torch.nn.Module, input_example: np.ndarray) -> str:
    """Log `model` (a CPU copy, in eval mode) to the active run; returns its model URI.

    `input_example` needs at least two rows so that the exported batch size stays dynamic.
    """
    cpu_model = copy.deepcopy(model).cpu().eval()
    example = np.ascontiguousarray(input_example, dtype=np.float32)
    info = mlflow.pytorch.log_model(
        cpu_model,
        name=MODEL_ARTIFACT,
        signature=model_signature(cpu_model, example),
        input_example=example,
        pip_requirements=pip_requirements(),
        serialization_format="pt2",
    )
    return info.model_uri


def load_state_dict(uri: str) -> dict[str, torch.Tensor]:
    """Weights from an MLflow model URI, or from a state-dict file (`.pt`/`.pth`, any URI).

    A state-dict file is loaded with `weights_only=True`; a model must be in the `pt2` format.
    """
    try:
        if uri.endswith(CHECKPOINT_SUFFIXES):
            local = Path(mlflow.artifacts.download_artifacts(uri))
            return torch.load(local, map_location="cpu", weights_only=True)
        return mlflow.pytorch.load_model(uri).state_dict()
    except (MlflowException, OSError, RuntimeError, pickle.UnpicklingError) as exc:
        raise EcgPlatformError(f"cannot load weights from {uri}: {exc}") from exc
