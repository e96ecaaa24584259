"""Grid search per patient: one nested run per setting, the winner chosen on validation only.

Each setting trains on the patient's training windows and is judged on its validation windows
at the epoch of lowest validation loss (the weights the stages keep): the highest validation
balanced accuracy wins, ties go to the lower validation loss. Test windows are never touched.
The winner is recorded as tags on the patient's grid-search run, where `individual` and
`finetune` find it (`hyperparams.find_grid_winner`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ecg_platform.data.patients import PatientSelection
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.runtime import resolve_device
from ecg_platform.engine.trainer import fit
from ecg_platform.errors import EcgPlatformError
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.cnn1d import load_pretrained
from ecg_platform.tracking.callback import EpochLogger
from ecg_platform.tracking.registry import ModelSource
from ecg_platform.tracking.run_search import FINISHED, RunRecord, find_finished_run, find_runs
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import (
    GRID_MODE_TAG,
    GRID_ROLE_TAG,
    GRID_SETTING_TAG,
    PATIENT_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
    TRACKING,
    PatientMode,
)
from ecg_platform.workflows.executor import Executor, Job, make_executor
from ecg_platform.workflows.finetune import pretrained_weights, resolve_pretrained
from ecg_platform.workflows.hyperparams import GridWinner
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.reuse import run_or_reuse
from ecg_platform.workflows.settings import GridSpec, PatientHyperparams
from ecg_platform.workflows.tracked_run import (
    config_params,
    load_request_study,
    new_model,
    stage_tags,
)

STAGE = "grid-search"
GRID_FIELDS = tuple(f"train.{name}" for name in ("batch_size", "lr", "weighted_sampling"))


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


@dataclass(frozen=True)
class PatientGrid:
    """One patient's grid search: every setting's result and the winner."""

    patient: str
    run_id: str
    results: list[SettingResult]
    winner: SettingResult

    def summary(self) -> str:
        """One line for the terminal."""
        counts = {
            "finished": sum(r.status == FINISHED and not r.reused for r in self.results),
            "reused": sum(r.reused for r in self.results),
            "failed": sum(r.status != FINISHED for r in self.results),
        }
        winner = self.winner
        return (
            f"{self.patient}: winner {setting_label(winner.setting)} (validation balanced "
            f"accuracy {winner.val_balanced_accuracy:.4f}, loss {winner.val_loss:.4f}); "
            + ", ".join(f"{count} {name}" for name, count in counts.items())
            + f"; run {self.run_id}"
        )


def search_patient(
    run: TrackedRun, plan: GridPlan, grid: GridSpec, patient: str, executor: Executor
) -> PatientGrid:
    """Every setting for one patient under its grid-search `run` (finished ones reused); the
    winner recorded on `run`. Raises when no setting finished."""
    settings = {setting_label(setting): setting for setting in grid.settings()}
    jobs = [
        Job(label, run_setting, SettingJob(plan, patient, setting, run.run_id), run.run_id)
        for label, setting in settings.items()
    ]
    tags = plan.tags("setting") | {PATIENT_TAG: patient}
    previous = find_runs(tags)

    def reuse(job: Job[SettingResult]) -> SettingResult | None:
        setting = job.argument.setting
        match = find_finished_run(tags, plan.params(setting), previous)
        return SettingResult.of_run(setting, match) if match else None

    batch = run_or_reuse(executor, jobs, reuse, f"{STAGE} {patient}", "settings")
    done, failed = batch.outcomes(), batch.failed()
    results = [
        done.get(label) or SettingResult(setting, None, "FAILED", error=failed[label])
        for label, setting in settings.items()
    ]
    run.log_dict({"settings": [result.as_dict() for result in results]}, "grid_results.json")
    run.log_metrics(
        {
            "settings_finished": sum(result.status == FINISHED for result in results),
            "settings_reused": len(batch.reused),
            "settings_failed": sum(result.status != FINISHED for result in results),
        }
    )
    winner = pick_winner(results)
    if winner is None or winner.run_id is None:
        raise EcgPlatformError(
            f"no setting of the grid finished for patient {patient}; the failed runs' "
            "failure_reason tags say why"
        )
    record_winner(run, plan, patient, winner)
    return PatientGrid(patient, run.run_id, results, winner)


def record_winner(run: TrackedRun, plan: GridPlan, patient: str, winner: SettingResult) -> None:
    """Tags (where the stages look it up), metrics and `grid_winner.json` on the patient's run."""
    run.set_tags(GridWinner(winner.setting, run.run_id, str(winner.run_id)).tags())
    run.log_metrics(
        {
            "winner_val_balanced_accuracy": winner.val_balanced_accuracy,
            "winner_val_loss": winner.val_loss,
        }
    )
    run.log_dict(
        {"patient": patient, "mode": plan.mode, **plan.tags("patient"), **winner.as_dict()},
        "grid_winner.json",
    )


def grid_params(plan: GridPlan, grid: GridSpec, workers: int) -> dict[str, Any]:
    """The grid and the settings every setting shares, as parameters of the grid's top run."""
    request = plan.request
    shared = config_params(request.data, request.model, request.train)
    shared = {key: value for key, value in shared.items() if key not in GRID_FIELDS}
    spec = {f"grid.{name}": ",".join(map(str, values)) for name, values in asdict(grid).items()}
    return shared | spec | {"grid.mode": plan.mode, "grid.workers": workers}


def run_grid_search(
    request: StageRequest,
    grid: GridSpec,
    mode: PatientMode,
    workers: int,
    pretrained_uri: str = TRACKING.default_pretrained_uri,
    force: bool = False,
) -> list[PatientGrid]:
    """Every setting of `grid` for each requested patient, `workers` settings at a time.

    One patient: its grid-search run is the top run. Several: a top run with one nested run per
    patient, each with one nested run per setting. `finetune` mode starts every setting from
    `pretrained_uri` (default: the champion), resolved once to an exact version.
    """
    several = request.several_patients
    role = "patients" if several else "patient"
    plan = GridPlan(request, mode, None)
    with stage_run(
        STAGE,
        request.patients.label,
        plan.tags(role),
        run_name=f"{STAGE}-{request.patients.label}",
        parent_run_id=request.parent_run_id,
    ) as outer:
        if mode == "finetune":
            plan = replace(plan, pretrained=resolve_pretrained(pretrained_uri, request.data, force))
            outer.set_tags(plan.tags(role))
        outer.log_params(grid_params(plan, grid, workers))
        records = load_request_study(request).records
        with make_executor(workers) as executor:
            if not several:
                return [search_patient(outer, plan, grid, records[0], executor)]
            return _search_patients(outer, plan, grid, records, executor)


def _search_patients(
    outer: TrackedRun, plan: GridPlan, grid: GridSpec, records: list[str], executor: Executor
) -> list[PatientGrid]:
    """One nested grid-search run per patient; a patient without a winner fails at the end."""
    searched, failed = [], []
    for record in records:
        name = f"{STAGE}-{record}"
        try:
            with stage_run(STAGE, record, plan.tags("patient"), name, nested=True) as run:
                searched.append(search_patient(run, plan, grid, record, executor))
        except EcgPlatformError as exc:
            failed.append(f"{record}: {exc}")
    winners = {found.patient: found.winner.as_dict() for found in searched}
    outer.log_dict(winners, "grid_winners.json")
    if failed:
        raise EcgPlatformError("grid search found no winner for " + "; ".join(failed))
    return searched
