"""The model's typed config: the architecture, owned beside the models that read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """CNN1D architecture (docs/model.md); defaults give 67,169 parameters for 1x128."""

    num_blocks: int = 4
    block_channels: int = 32
    kernel_size: int = 5
    pool_size: int = 5
    pool_stride: int = 2
    hidden_units: int = 160
