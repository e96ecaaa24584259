"""One setting of a patient's grid search: what the settings share (`GridPlan`), the training
run of one setting in a worker (`run_setting`), its validation result and the winner among them.

A setting is judged on its validation windows at the epoch of lowest validation loss (the
weights the stages keep): the highest validation balanced accuracy wins, ties go to the lower
validation loss. Test windows are never touched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ecg_platform.data.patients import PatientSelection
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.runtime import resolve_device
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.cnn1d import load_pretrained
from ecg_platform.tracking.callback import EpochLogger
from ecg_platform.tracking.registry import ModelSource
from ecg_platform.tracking.run_search import FINISHED, RunRecord
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import (
    GRID_MODE_TAG,
    GRID_ROLE_TAG,
    GRID_SETTING_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
    PatientMode,
)
from ecg_platform.workflows.finetune import pretrained_weights
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import HYPERPARAM_FIELDS, PatientHyperparams
from ecg_platform.workflows.tracked_run import (
    config_params,
    load_request_study,
    new_model,
    stage_tags,
    train_param,
)

STAGE = "grid-search"
GRID_FIELDS = tuple(train_param(name) for name in HYPERPARAM_FIELDS)


def setting_label(setting: PatientHyperparams) -> str:
    """A short name of a setting, e.g. `b4-lr0.01-weighted`."""
    sampling = "weighted" if setting.weighted_sampling else "plain"
    return f"b{setting.batch_size}-lr{setting.lr:g}-{sampling}"


@dataclass(frozen=True)
class GridPlan:
    """What every setting of one grid search shares (picklable: it travels to the workers)."""

    request: StageRequest
    mode: PatientMode
    pretrained: ModelSource | None  # the exact pretrained model, in finetune mode

    def train_for(self, setting: PatientHyperparams) -> TrainConfig:
        """The request's training config with the setting's batch size, lr and sampling."""
        return self.request.train.replace(**asdict(setting))

    def params(self, setting: PatientHyperparams) -> dict[str, Any]:
        """The configuration a setting's run logs (and a finished run must match to be reused)."""
        request = self.request
        return config_params(request.data, request.model, self.train_for(setting))

    def tags(self, role: str) -> dict[str, str]:
        """Tags of the grid's runs of `role` (`patients`, `patient` or `setting`)."""
        tags = stage_tags(self.request) | {GRID_ROLE_TAG: role, GRID_MODE_TAG: self.mode}
        if self.pretrained is not None:
            tags |= {PRETRAINED_URI_TAG: self.pretrained.uri}
            tags |= {PRETRAINED_VERSION_TAG: self.pretrained.version or ""}
        return tags


@dataclass(frozen=True)
class SettingResult:
    """How one setting did on validation; `error` says why it failed."""

    setting: PatientHyperparams
    run_id: str | None
    status: str
    val_balanced_accuracy: float = math.nan
    val_loss: float = math.nan
    best_epoch: int = 0
    reused: bool = False
    error: str | None = None

    @classmethod
    def of_run(cls, setting: PatientHyperparams, run: RunRecord) -> SettingResult:
        """The result a finished run logged (resume)."""
        metrics = run.metrics
        return cls(
            setting,
            run.run_id,
            run.status,
            metrics["best_val_balanced_accuracy"],
            metrics["best_val_loss"],
            int(metrics["best_epoch"]),
            reused=True,
        )

    def ranking(self) -> tuple[float, float]:
        """Sort key, best first: higher balanced accuracy, then lower loss (NaN is worst)."""
        accuracy = self.val_balanced_accuracy
        loss = self.val_loss
        return (-accuracy if accuracy == accuracy else math.inf, loss if loss == loss else math.inf)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready row for `grid_results.json`."""
        row = {"setting": setting_label(self.setting), **asdict(self.setting)}
        return row | {key: value for key, value in asdict(self).items() if key != "setting"}


@dataclass(frozen=True)
class SettingJob:
    """One setting of one patient, for a worker."""

    plan: GridPlan
    patient: str
    setting: PatientHyperparams
    parent_run_id: str


def run_setting(job: SettingJob) -> SettingResult:
    """Train one setting and log it as a run nested under the patient's grid-search run."""
    plan, setting = job.plan, job.setting
    train = plan.train_for(setting)
    patient = PatientSelection((job.patient,))
    loaded = load_request_study(replace(plan.request, patients=patient))
    label = setting_label(setting)
    tags = plan.tags("setting") | {GRID_SETTING_TAG: label}
    name = f"{STAGE}-{job.patient}-{label}"
    with stage_run(STAGE, job.patient, tags, name, parent_run_id=job.parent_run_id) as run:
        run.log_params(plan.params(setting) | {"data.dir": loaded.data_dir, "grid.mode": plan.mode})
        model = new_model(plan.request, train.seed)
        if plan.pretrained is not None:
            load_pretrained(model, pretrained_weights(plan.pretrained.uri))
        splits = loaded.splits([job.patient], resolve_device(train.device))
        callbacks, metrics = [EpochLogger(run)], classification_metrics
        result = fit(model, splits["train"], splits["val"], train, callbacks, metrics=metrics)
        accuracy = result.best.val["balanced_accuracy"]
        run.log_metrics(
            {
                "best_val_balanced_accuracy": accuracy,
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "stopped_early": float(result.stopped_early),
            }
        )
    return SettingResult(
        setting, run.run_id, FINISHED, accuracy, result.best_val_loss, result.best_epoch
    )


def pick_winner(results: list[SettingResult]) -> SettingResult | None:
    """The finished setting with the best validation balanced accuracy (ties: lower loss,
    then grid order); None when none finished."""
    finished = [result for result in results if result.status == FINISHED]
    return min(finished, key=SettingResult.ranking) if finished else None
