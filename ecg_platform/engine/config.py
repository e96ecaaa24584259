"""The training run's typed config, owned by the engine that reads every field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ecg_platform.errors import EcgPlatformError

Optimizer = Literal["adam", "sgd"]
Scheduler = Literal["reducelr", "cycliclr", "cosine", "none"]
DEFAULT_TRAIN_SEED = 42


@dataclass(frozen=True)
class TrainConfig:
    """One training run (docs/training.md): optimiser, schedule, sampling, stopping."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Optimizer = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    scheduler: Scheduler = "reducelr"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    cyclic_base_lr_ratio: float = 0.1  # cycliclr: the rate cycles between lr * ratio and lr
    cyclic_half_cycle_epochs: int = 2  # cycliclr: epochs from the lowest rate to the highest
    weighted_sampling: bool = True
    augment: float = 0.0  # windows' random gain, offset and noise (engine.augment); 0: none
    encoder_lr_scale: float = 1.0  # the encoder's lr as a multiple of lr; 0 freezes it
    average_last: int = 0  # keep the mean of the last N (or all) epochs' weights; 0: the best's
    early_stopping: bool = False
    early_stopping_patience: int = 5
    early_stopping_min_epochs: int = 10
    threshold: float = 0.5
    seed: int = DEFAULT_TRAIN_SEED
    device: str = "auto"
    threads: int = 0  # CPU threads; 0: one for batches of 8 or fewer, else torch's default

    def __post_init__(self) -> None:
        """Refuse settings that cannot train, or contradict each other, when they are made (at
        the command line's edge, before any run exists), not when training starts."""
        if self.batch_size < 1 or self.epochs < 1:
            raise EcgPlatformError("batch size and epochs must be at least 1")
        if self.augment < 0:
            raise EcgPlatformError(f"augmentation strength must be >= 0, got {self.augment}")
        if self.average_last < 0:
            raise EcgPlatformError(f"epochs to average must be >= 0, got {self.average_last}")
        if self.average_last and self.early_stopping:
            raise EcgPlatformError(
                "averaging the last epochs' weights needs a known last epoch: turn early "
                "stopping off, or average_last to 0"
            )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
