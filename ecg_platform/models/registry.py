"""Models by name: the one place that turns a ModelConfig into a freshly initialised model."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import CNN1D, load_pretrained
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import Classifier

# name -> constructor(config, input_length); a new architecture is one more entry
ARCHITECTURES: Mapping[str, Callable[[ModelConfig, int], Classifier]] = {"cnn1d": CNN1D}


def build_model(config: ModelConfig, input_length: int) -> Classifier:
    """The architecture `config.architecture`, for inputs of `input_length` samples; refuses an
    unknown name or an output or side-feature count that cannot be."""
    builder = ARCHITECTURES.get(config.architecture)
    if builder is None:
        raise EcgPlatformError(
            f"unknown architecture {config.architecture!r}; choose from: {', '.join(ARCHITECTURES)}"
        )
    if config.num_outputs < 1:
        raise EcgPlatformError(
            f"num_outputs must be 1 (binary) or the number of classes, not {config.num_outputs}"
        )
    if config.extra_features < 0:
        raise EcgPlatformError(f"extra_features must be >= 0, not {config.extra_features}")
    return builder(config, input_length)


def trained_model(
    config: ModelConfig, input_length: int, weights: Mapping[str, torch.Tensor]
) -> Classifier:
    """The architecture built for `input_length` with trained `weights`, in eval mode: a model
    to apply (every tensor checked by `load_pretrained`)."""
    model = build_model(config, input_length)
    load_pretrained(model, weights)
    return model.eval()
