"""What a fit returns and what its callbacks see: one record per epoch, and the best of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from torch import nn


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: its learning rate (at the start), train and validation metrics, duration."""

    epoch: int  # 1-based
    lr: float
    train: dict[str, float]
    val: dict[str, float]
    seconds: float


class Callback(Protocol):
    """Receives every finished epoch (e.g. the MLflow logger of `ecg_platform.tracking`)."""

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None: ...


@dataclass
class FitResult:
    """The epochs run, the best one (lowest validation loss), and whether it stopped early."""

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    resumed_epochs: int = 0  # epochs restored from a checkpoint, trained by an earlier process

    @property
    def best(self) -> EpochRecord:
        """The record of the best epoch."""
        return self.history[self.best_epoch - 1]

    @property
    def seconds_trained_here(self) -> float:
        """Training time of the epochs this fit ran (a resumed run's earlier ones excluded)."""
        return sum(record.seconds for record in self.history[self.resumed_epochs :])
