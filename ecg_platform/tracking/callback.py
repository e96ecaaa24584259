"""The engine callback that logs every epoch to MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecg_platform.tracking.runs import TrackedRun

if TYPE_CHECKING:
    from ecg_platform.engine.history import EpochRecord


class EpochLogger:
    """Logs `train_*`, `val_*`, `lr` and `epoch_seconds` of each epoch with `step=epoch`."""

    def __init__(self, run: TrackedRun) -> None:
        self.run = run

    def on_epoch_end(self, record: EpochRecord, model: Any, is_best: bool) -> None:
        """Called by the trainer after each epoch."""
        metrics = {f"train_{name}": value for name, value in record.train.items()}
        metrics |= {f"val_{name}": value for name, value in record.val.items()}
        metrics |= {"lr": record.lr, "epoch_seconds": record.seconds}
        self.run.log_metrics(metrics, step=record.epoch)
