"""What a training command asks for and what each of its runs produced (light: no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ecg_platform.data.config import DataConfig
from ecg_platform.engine.config import TrainConfig
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import Stage


@dataclass(frozen=True)
class PatientOverrides:
    """Per-patient hyperparameters given explicitly (None: grid-search winner or study table)."""

    batch_size: int | None = None
    lr: float | None = None
    weighted_sampling: bool | None = None

    def given(self) -> dict[str, Any]:
        """The fields that were given."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class StageRequest:
    """One training command: stage, data, patients, architecture and training settings."""

    stage: Stage
    data_dir: str | None
    data: DataConfig
    patients: str
    cache_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    overrides: PatientOverrides = field(default_factory=PatientOverrides)
    grid_winners: bool = True  # False: the study's table even where a grid-search winner exists
    parent_run_id: str | None = None  # nest the request's top run under this running run

    @property
    def several_patients(self) -> bool:
        """`all` or a list: one nested run per patient under a parent run."""
        return self.patients.strip() == "all" or "," in self.patients


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
    train_seconds: float = 0.0  # the epochs' wall time, without testing and logging

    def summary(self) -> str:
        """One line for the terminal."""
        accuracy = self.test_metrics["balanced_accuracy"]
        champion = ", now champion" if self.champion else ""
        return (
            f"{self.patient}: test balanced accuracy {accuracy:.4f}, best epoch {self.best_epoch}, "
            f"run {self.run_id}, {self.model_name} v{self.model_version}{champion}"
        )
