"""The model's typed config: the architecture, owned beside the models that read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Which architecture (`models.registry`), its sizes and its output (docs/model.md); the
    defaults give the study's CNN1D, 67,169 parameters for 1x128 windows."""

    num_blocks: int = 4
    block_channels: int = 32
    kernel_size: int = 5
    pool_size: int = 5
    pool_stride: int = 2
    hidden_units: int = 160
    architecture: str = "cnn1d"
    num_outputs: int = 1  # 1: one logit, sigmoid (binary); K > 1: K logits, softmax (K classes)
    extra_features: int = 0  # per-window side features (e.g. RR intervals) the head also reads
