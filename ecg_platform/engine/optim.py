"""The optimiser and learning-rate schedule of a TrainConfig (the model says which parameters
train, and at which rate: `Classifier.parameter_groups`)."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import lr_scheduler

from ecg_platform.engine.config import TrainConfig
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.protocol import ParamGroup


def build_optimizer(groups: list[ParamGroup], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD (momentum, Nesterov) over the model's parameter groups, with weight decay;
    `fused` kernels: one call per step."""
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    if config.optimizer == "sgd":
        if config.nesterov and config.momentum <= 0:
            raise EcgPlatformError("Nesterov momentum needs --momentum > 0")
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
            fused=True,
        )
    raise EcgPlatformError(f"unknown optimizer {config.optimizer!r}; use adam or sgd")


class LrSchedule:
    """One interface over the schedulers: `reducelr` (validation loss, per epoch), `cycliclr`
    (triangular, per batch), `cosine` (to zero at the last epoch, per epoch) or `none`."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
    ) -> None:
        self.kind = config.scheduler
        self.scheduler: Any = None
        initial_lrs = [group["lr"] for group in optimizer.param_groups]
        if self.kind == "reducelr":
            self.scheduler = lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=config.plateau_factor, patience=config.plateau_patience
            )
        elif self.kind == "cycliclr":
            self.scheduler = lr_scheduler.CyclicLR(
                optimizer,
                base_lr=[lr * config.cyclic_base_lr_ratio for lr in initial_lrs],
                max_lr=initial_lrs,
                step_size_up=config.cyclic_half_cycle_epochs * steps_per_epoch,
                cycle_momentum=False,
            )
        elif self.kind == "cosine":
            self.scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        elif self.kind != "none":
            raise EcgPlatformError(
                f"unknown scheduler {self.kind!r}; use reducelr, cycliclr, cosine or none"
            )

    @property
    def per_batch(self) -> bool:
        """Whether `after_batch` must be called after every optimiser step."""
        return self.kind == "cycliclr"

    def after_batch(self) -> None:
        """Advance a per-batch schedule."""
        self.scheduler.step()

    def after_epoch(self, val_loss: float) -> None:
        """Advance a per-epoch schedule (reducelr watches the validation loss)."""
        if self.kind == "reducelr":
            self.scheduler.step(val_loss)
        elif self.kind == "cosine":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state (empty for `none`)."""
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`."""
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)
