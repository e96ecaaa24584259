"""The workflows' own settings: each stage's training defaults, the study's per-patient table
and the grid (data in study.toml), and where reports go."""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.config import ProtocolConfig
from ecg_platform.engine.config import TrainConfig
from ecg_platform.tracking.schema import Stage

REPORT_DIR = Path("outputs/report")
PRETRAIN_DEFAULTS = TrainConfig(batch_size=32, weighted_sampling=True, early_stopping=False)
PATIENT_DEFAULTS = TrainConfig(early_stopping=True)
FINETUNE_DEFAULTS = PATIENT_DEFAULTS.replace(encoder_lr_scale=0.0)  # the study: frozen encoder
# Pretraining on a beat preset augments the windows (engine.augment): the DS1 model then finds
# the other patients' S beats (docs/results.md section 6). The paper preset stays the study's.
BEAT_PRETRAIN_AUGMENT = 0.3
# Inter-patient pretraining keeps the mean of its last epochs' weights: the lowest-DS1-loss epoch
# moved the generic DS2 SVEB F1 by 17 points between machines (docs/results.md section 6).
INTER_PATIENT_AVERAGED_EPOCHS = 10


@dataclass(frozen=True)
class PatientHyperparams:
    """The per-patient settings that the grid search chooses."""

    batch_size: int
    lr: float
    weighted_sampling: bool


# in this order: the columns of runs.csv and the grid's run parameters
HYPERPARAM_FIELDS = tuple(field.name for field in fields(PatientHyperparams))


@dataclass(frozen=True)
class GridSpec:
    """The grid-search space: each combination is one run per patient."""

    batch_sizes: tuple[int, ...]
    lrs: tuple[float, ...]
    weighted_sampling: tuple[bool, ...]

    def settings(self) -> list[PatientHyperparams]:
        """Every combination, in a fixed order (batch size, then lr, then sampling)."""
        axes = (self.batch_sizes, self.lrs, self.weighted_sampling)
        return [PatientHyperparams(*values) for values in itertools.product(*axes)]


def stage_defaults(stage: Stage, data: ProtocolConfig | None = None) -> TrainConfig:
    """The training defaults of a stage (the grid search's are those of its mode) on `data`'s
    preset (pretraining augments on the beat presets and averages on the inter-patient one)."""
    defaults = {"pretrain": PRETRAIN_DEFAULTS, "finetune": FINETUNE_DEFAULTS}.get(
        stage, PATIENT_DEFAULTS
    )
    if stage != "pretrain" or not isinstance(data, BeatConfig):
        return defaults
    averaged = INTER_PATIENT_AVERAGED_EPOCHS if data.protocol == "inter-patient" else 0
    return defaults.replace(augment=BEAT_PRETRAIN_AUGMENT, average_last=averaged)


def _study_file() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("study.toml").read_text())


_STUDY = _study_file()
STUDY_HYPERPARAMS: dict[str, PatientHyperparams] = {
    patient: PatientHyperparams(row["batch_size"], row["lr"], row["weighted_sampling"])
    for row in _STUDY["table"]
    for patient in row["patients"].split()
}
STUDY_GRID = GridSpec(**{name: tuple(values) for name, values in _STUDY["grid"].items()})
