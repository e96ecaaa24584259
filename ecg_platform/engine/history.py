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
    """The epochs run, the best one (lowest validation loss), whether it stopped early, and
    which weights were kept: the best epoch's, or the mean of the last `averaged_epochs`'."""

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    resumed_epochs: int = 0  # epochs restored from a checkpoint, trained by an earlier process
    averaged_epochs: int = 0  # N > 0: the kept weights are the mean of the last N epochs'
    averaged_val: dict[str, float] = field(default_factory=dict)  # the mean weights' validation

    @property
    def best(self) -> EpochRecord:
        """The record of the best epoch."""
        return self.history[self.best_epoch - 1]

    @property
    def kept_val(self) -> dict[str, float]:
        """The validation metrics of the weights kept."""
        return self.averaged_val if self.averaged_epochs else self.best.val

    @property
    def kept(self) -> str:
        """Which weights were kept, in words."""
        if self.averaged_epochs:
            last = len(self.history)
            return f"the mean of epochs {last - self.averaged_epochs + 1}-{last}"
        return f"epoch {self.best_epoch} (lowest validation loss)"

    @property
    def seconds_trained_here(self) -> float:
        """Training time of the epochs this fit ran (a resumed run's earlier ones excluded)."""
        return sum(record.seconds for record in self.history[self.resumed_epochs :])
