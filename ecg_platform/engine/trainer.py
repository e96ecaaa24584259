"""One trainer for pretraining, individual training and fine-tuning; callbacks see every epoch.

The engine knows models only through `models.protocol`: `logits(x, features)` ((n,) logits:
binary cross-entropy; (n, K): cross-entropy), the model's own `parameter_groups`, and an
optional encoder/head split that lets `finetune_head` train the head alone. Each epoch's
training metrics come from the predictions made while training (one `metrics` call per epoch),
validation runs in large batches under `torch.inference_mode`. The caller chooses the metrics
function (the engine imports no evaluation code) and knows nothing of MLflow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel

from ecg_platform.data.loaders import EpochSampler, TensorSplit, batches, gather
from ecg_platform.engine import objective
from ecg_platform.engine.augment import augment_windows
from ecg_platform.engine.checkpoint import (
    check_resumable,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.history import Callback, EpochRecord, FitResult
from ecg_platform.engine.inference import encode, evaluate
from ecg_platform.engine.objective import MetricsFn
from ecg_platform.engine.optim import LrSchedule, build_optimizer
from ecg_platform.engine.runtime import (
    cpu_threads,
    restore_rng_state,
    rng_state,
    small_batch_kernels,
)
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.protocol import (
    Classifier,
    EncoderHead,
    Head,
    ParamGroup,
    freeze_encoder,
    has_encoder_head,
)

log = logging.getLogger(__name__)  # one INFO line per epoch where no progress bar is drawn


def fit(
    model: Classifier,
    train: TensorSplit,
    val: TensorSplit,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    *,
    metrics: MetricsFn,
) -> FitResult:
    """Train `model`'s parameter groups (an encoder at lr x `config.encoder_lr_scale`; 0 freezes
    it: `finetune_head`); return the history, with the weights of the epoch with the lowest
    validation loss restored into `model` (`config.average_last` N: the mean of the last N
    epochs' weights instead, all epochs' if fewer, validated once more).

    `metrics(labels, probabilities, threshold, loss)` scores every epoch's training and
    validation predictions, e.g. `evaluation.metrics.classification_metrics`.
    `checkpoint_path`: written atomically after every epoch; `resume` continues from it (the
    same settings give the same result as an uninterrupted run). `progress`: a tqdm bar per
    epoch (default: when stderr is a terminal), else one INFO log line per epoch."""
    options = (callbacks, checkpoint_path, resume, progress)
    if config.encoder_lr_scale == 0 and has_encoder_head(model):
        return finetune_head(model, train, val, config, *options, metrics=metrics)
    return _fit(model, model, train, val, config, *options, metrics)


def finetune_head(
    model: EncoderHead,
    train: TensorSplit,
    val: TensorSplit,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    *,
    metrics: MetricsFn,
) -> FitResult:
    """Freeze the encoder and train only the head, on encoder features computed once per split.

    Gives the same result as `fit` on the whole model with a frozen encoder, much faster; the
    model's `parameter_groups` name what trains. Callbacks receive the whole model; checkpoints
    hold the head's training state."""
    if config.augment:
        raise EcgPlatformError(
            "augmentation needs a network that sees the windows: with a frozen encoder "
            "(encoder_lr_scale 0) the head trains on features computed once; set augment to 0 or "
            "encoder_lr_scale above 0"
        )
    freeze_encoder(model)
    model.to(train.device)
    with cpu_threads(config.threads, config.batch_size):
        features = encode(model, train), encode(model, val)
    options = (callbacks, checkpoint_path, resume, progress, metrics)
    return _fit(model.head, model, *features, config, *options)


def _fit(
    trainee: Classifier | Head,
    owner: Classifier,
    train: TensorSplit,
    val: TensorSplit,
    config: TrainConfig,
    callbacks: Sequence[Callback],
    checkpoint_path: Path | None,
    resume: bool,
    progress: bool | None,
    metrics: MetricsFn,
) -> FitResult:
    """Train `trainee` (the model, or its head on encoder features) with the parameter groups
    of `owner` (the whole model), which callbacks see."""
    _check_inputs(train, val)
    if resume and checkpoint_path is None:
        raise EcgPlatformError("resuming needs a checkpoint path")
    trainee.to(train.device)
    groups = owner.parameter_groups(config.lr, config.encoder_lr_scale)
    show_bar = sys.stderr.isatty() if progress is None else progress
    run = _Run(trainee, groups, train, config, metrics, show_bar)
    if resume:
        run.restore(load_checkpoint(checkpoint_path), checkpoint_path)
    first_epoch = len(run.result.history) + 1
    with cpu_threads(config.threads, config.batch_size):
        for epoch in range(first_epoch, config.epochs + 1):
            if run.result.stopped_early:
                break
            record, is_best = run.run_epoch(epoch, val)
            for callback in callbacks:
                callback.on_epoch_end(record, owner, is_best)
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, run.state())
        return run.finish(val)


class _Run:
    """The state of one training run, and the loop over its epochs."""

    def __init__(
        self,
        model: Classifier | Head,
        groups: list[ParamGroup],
        train: TensorSplit,
        config: TrainConfig,
        metrics: MetricsFn,
        progress: bool,
    ) -> None:
        self.model, self.train, self.config, self.progress = model, train, config, progress
        self.metrics = metrics
        if not groups:
            raise EcgPlatformError("the model has no trainable parameters")
        self.optimizer = build_optimizer(groups, config)
        self.steps = math.ceil(len(train) / config.batch_size)
        self.schedule = LrSchedule(self.optimizer, config, self.steps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sampler = EpochSampler(train.y, config.weighted_sampling, self.generator)
        self.result = FitResult(averaged_epochs=min(config.average_last, config.epochs))
        self.best_weights = self._weights()
        # the running mean of the last epochs' weights, buffers included
        self.averaged = AveragedModel(model, use_buffers=True) if config.average_last else None

    def _weights(self) -> dict[str, Tensor]:
        return {name: t.detach().clone() for name, t in self.model.state_dict().items()}

    def train_epoch(self, bar: Any) -> dict[str, float]:
        """One pass over the sampled training windows; metrics of the predictions made."""
        epoch_data = gather(self.train, self.sampler.indices())
        if self.config.augment:
            x = augment_windows(epoch_data.x, self.config.augment, self.generator)
            epoch_data = dataclasses.replace(epoch_data, x=x)
        outputs = []
        self.model.train()
        with small_batch_kernels(self.config.batch_size):
            for batch in batches(epoch_data, self.config.batch_size):
                logits = self.model.logits(batch.x, batch.features)
                loss = objective.loss(logits, batch.y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                if self.schedule.per_batch:
                    self.schedule.after_batch()
                outputs.append(logits.detach())
                bar.update()
        logits = torch.cat(outputs)
        return objective.score(logits, epoch_data.y, self.config.threshold, self.metrics)

    def run_epoch(self, epoch: int, val: TensorSplit) -> tuple[EpochRecord, bool]:
        """Train, validate, schedule, keep the best weights, report; raise on divergence."""
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        with _progress_bar(self.progress, epoch, self.config, self.steps) as bar:
            train_metrics = self.train_epoch(bar)
            val_metrics = evaluate(self.model, val, self.config.threshold, metrics=self.metrics)
            _check_finite(epoch, lr, train_metrics, val_metrics)
            self.schedule.after_epoch(val_metrics["loss"])
            seconds = time.perf_counter() - started
            record = EpochRecord(epoch, lr, train_metrics, val_metrics, seconds)
            is_best = self._add(record)
            if self.averaged is not None and epoch > self.config.epochs - self.config.average_last:
                self.averaged.update_parameters(self.model)
            summary = _summary(record, is_best)
            if bar.disable:
                log.info("epoch %d/%d %s", epoch, self.config.epochs, summary)
            else:
                bar.set_postfix_str(summary, refresh=False)
        return record, is_best

    def _add(self, record: EpochRecord) -> bool:
        """Append `record`, keep the weights if it is the best so far, decide on stopping."""
        result, config = self.result, self.config
        result.history.append(record)
        is_best = record.val["loss"] < result.best_val_loss
        if is_best:
            result.best_epoch, result.best_val_loss = record.epoch, record.val["loss"]
            self.best_weights = self._weights()
        result.stopped_early = (
            config.early_stopping
            and record.epoch >= config.early_stopping_min_epochs
            and record.epoch - result.best_epoch >= config.early_stopping_patience
        )
        return is_best

    def finish(self, val: TensorSplit) -> FitResult:
        """Load the weights kept into the model: the best epoch's, or the running mean of the
        last epochs', which is validated once more."""
        if self.averaged is None:
            self.model.load_state_dict(self.best_weights)
        else:
            self.model.load_state_dict(self.averaged.module.state_dict())
            threshold = self.config.threshold
            self.result.averaged_val = evaluate(self.model, val, threshold, metrics=self.metrics)
        return self.result

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly where this one is."""
        result = self.result
        return {
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "history": [dataclasses.asdict(record) for record in result.history],
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "best_weights": self.best_weights,
            "stopped_early": result.stopped_early,
            "rng": rng_state(self.generator),
            "averaged": None if self.averaged is None else self.averaged.state_dict(),
        }

    def restore(self, state: dict[str, Any], path: Path) -> None:
        """Continue from `state()` saved at `path`, which must come from the same settings."""
        saved = dataclasses.asdict(TrainConfig()) | state["config"]  # newer fields: defaults
        check_resumable(saved, dataclasses.asdict(self.config), path)
        if self.averaged is not None:
            _check_averaged_window(saved["epochs"], self.config, path)
            self.averaged.load_state_dict(state["averaged"])
        load_model_state(self.model, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.best_weights = {k: t.to(self.train.device) for k, t in state["best_weights"].items()}
        self.result = FitResult(
            [EpochRecord(**record) for record in state["history"]],
            state["best_epoch"],
            state["best_val_loss"],
            state["stopped_early"],
            resumed_epochs=len(state["history"]),
            averaged_epochs=self.result.averaged_epochs,
        )
        restore_rng_state(state["rng"], self.generator)


def _check_inputs(train: TensorSplit, val: TensorSplit) -> None:
    """The data's own checks; the settings' are TrainConfig's, made before any run exists."""
    if len(train) == 0 or len(val) == 0:
        raise EcgPlatformError(
            f"cannot train on {len(train)} training and {len(val)} validation windows: both "
            "splits need windows"
        )
    for split in (train, val):
        side = () if split.features is None else (split.features,)
        if not all(torch.isfinite(tensor).all() for tensor in (split.x, *side)):
            raise EcgPlatformError(
                "the windows or side features contain NaN or infinite values; check the data"
            )


def _check_averaged_window(saved_epochs: int, config: TrainConfig, path: Path) -> None:
    """A run that averages its last epochs cannot resume to another last epoch: the mean
    already taken would cover other epochs than the new run's last ones."""
    if saved_epochs != config.epochs:
        raise EcgPlatformError(
            f"checkpoint {path} averages the last {config.average_last} of {saved_epochs} "
            f"epochs; resume it with {saved_epochs} epochs, or delete it to start afresh"
        )


def _progress_bar(enabled: bool, epoch: int, config: TrainConfig, steps: int) -> Any:
    """A tqdm bar over the epoch's batches (a no-op one when disabled)."""
    from tqdm import tqdm

    desc = f"epoch {epoch}/{config.epochs}"
    return tqdm(total=steps, desc=desc, unit="batch", disable=not enabled, leave=True)


def _check_finite(epoch: int, lr: float, train: dict[str, float], val: dict[str, float]) -> None:
    """Stop a diverged run with the epoch and learning rate that produced it."""
    for name, metrics in (("training", train), ("validation", val)):
        if not math.isfinite(metrics["loss"]):
            raise EcgPlatformError(
                f"training diverged at epoch {epoch} (learning rate {lr:g}): the {name} loss "
                f"is {metrics['loss']}; lower --lr or change the optimizer"
            )


def _summary(record: EpochRecord, is_best: bool) -> str:
    """One line per epoch: lr, train and validation loss and balanced accuracy, time."""
    train, val = record.train, record.val
    return (
        f"train loss {train['loss']:.4f} bal_acc {train['balanced_accuracy']:.4f} | val loss "
        f"{val['loss']:.4f} bal_acc {val['balanced_accuracy']:.4f} | lr {record.lr:.3g} "
        f"{record.seconds:.1f}s{' *' if is_best else ''}"
    )
