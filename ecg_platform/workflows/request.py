"""What each command asks the workflows for, resolved at the edge, and what a training run
produced (light: no torch, no MLflow)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ecg_platform.data.config import ProtocolConfig
from ecg_platform.data.patients import EVERY_PATIENT, PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.engine.config import TrainConfig
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import Stage
from ecg_platform.workflows.executor_spec import Workers
from ecg_platform.workflows.settings import HYPERPARAM_FIELDS, REPORT_DIR

# The training fields a patient stage may leave `auto`: chosen per patient, not per command
PER_PATIENT_FIELDS = frozenset(HYPERPARAM_FIELDS)


@dataclass(frozen=True)
class StageRequest:
    """One training command, fully resolved: data source, patients, architecture and training
    values. `train` holds every value (the stage's defaults with the command line's applied);
    the fields named in `per_patient` were left `auto` and are chosen per patient (grid-search
    winner, else the study's table)."""

    stage: Stage
    source: DataSource
    patients: PatientSelection
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    per_patient: frozenset[str] = frozenset()
    grid_winners: bool = True  # False: the study's table even where a grid-search winner exists
    parent_run_id: str | None = None  # nest the request's top run under this running run

    @property
    def data(self) -> ProtocolConfig:
        """The data config (its hash keys caches and runs)."""
        return self.source.config

    @property
    def several_patients(self) -> bool:
        """`all` or a list: one nested run per patient under a parent run."""
        return self.patients.several


@dataclass(frozen=True)
class ReportRequest:
    """What to compare and where to write it, resolved."""

    source: DataSource
    patients: PatientSelection = EVERY_PATIENT
    parents: tuple[str, ...] = ()  # compare these runs' nested runs instead of the latest
    out_dir: Path = REPORT_DIR
    parent_run_id: str | None = None  # nest the `report` run under this running run

    @property
    def data(self) -> ProtocolConfig:
        """The data config whose runs are compared."""
        return self.source.config


@dataclass(frozen=True)
class ReproduceRequest:
    """The study's settings, resolved: data, each stage's training values, architecture."""

    source: DataSource
    pretrain: TrainConfig
    patient: TrainConfig  # individual
    finetune: TrainConfig
    workers: Workers  # a count of local processes, or where and how many (e.g. Ray)
    patients: PatientSelection = EVERY_PATIENT
    model: ModelConfig = field(default_factory=ModelConfig)
    grid_winners: bool = False  # True: a patient's grid-search winner before the study's table
    out_dir: Path = REPORT_DIR
    repeats: int = 1  # training seeds seed, seed + 1, ...: every arm trained once with each

    @property
    def data(self) -> ProtocolConfig:
        """The data config of every run."""
        return self.source.config

    @property
    def training_seeds(self) -> tuple[int, ...]:
        """One per repeat; the data config (and so the split) stays the same for all."""
        return tuple(self.pretrain.seed + repeat for repeat in range(self.repeats))

    def with_training_seed(self, seed: int) -> ReproduceRequest:
        """The same study with every stage's training seed set to `seed`."""
        return replace(
            self,
            pretrain=self.pretrain.replace(seed=seed),
            patient=self.patient.replace(seed=seed),
            finetune=self.finetune.replace(seed=seed),
        )

    def stage_request(self, stage: Stage, parent_run_id: str | None = None) -> StageRequest:
        """The request of one stage for the study's patients (nested under `parent_run_id`);
        per-patient values come from the study's table or grid-search winners."""
        return StageRequest(
            stage,
            self.source,
            self.patients,
            model=self.model,
            train={"pretrain": self.pretrain, "finetune": self.finetune}.get(stage, self.patient),
            per_patient=PER_PATIENT_FIELDS,
            grid_winners=self.grid_winners,
            parent_run_id=parent_run_id,
        )


@dataclass(frozen=True)
class RunOutcome:
    """One finished run: where it is, how it tested, which registry version it became."""

    patient: str
    run_id: str
    test_metrics: dict[str, float]
    best_epoch: int
    model_name: str
    model_version: str
    champion: bool
    train_seconds: float = 0.0  # this process's epochs' wall time, without testing and logging

    def summary(self) -> str:
        """One line for the terminal."""
        accuracy = self.test_metrics["balanced_accuracy"]
        champion = ", now champion" if self.champion else ""
        return (
            f"{self.patient}: test balanced accuracy {accuracy:.4f}, best epoch {self.best_epoch}, "
            f"run {self.run_id}, {self.model_name} v{self.model_version}{champion}"
        )
