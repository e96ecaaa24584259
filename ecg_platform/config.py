"""Typed configuration: data protocol, model, training, and the study's per-patient table."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ecg_platform.errors import EcgPlatformError

Optimizer = Literal["adam", "sgd"]
Scheduler = Literal["reducelr", "cycliclr", "cosine", "none"]
Stage = Literal["pretrain", "individual", "finetune", "grid-search", "report", "reproduce"]
PatientMode = Literal["individual", "finetune"]

DEFAULT_SEED = 42
ABNORMAL_SYMBOLS = ("L", "R", "V", "A", "a", "j", "S", "F", "E", "e", "r", "!", "f", "/")
NORMAL_SYMBOLS = ("N",)


@dataclass(frozen=True)
class DataConfig:
    """The preprocessing protocol (DESIGN.md section 1); its hash keys caches and runs."""

    preset: str = "paper"
    channel: int = 0
    window_length: int = 360
    resample_length: int = 128
    filter_low_hz: float = 0.4
    filter_high_hz: float = 30.0
    filter_order: int = 3
    abnormal_symbols: tuple[str, ...] = ABNORMAL_SYMBOLS
    normal_symbols: tuple[str, ...] = NORMAL_SYMBOLS
    min_abnormal_share: float = 0.009
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    split_seed: int = DEFAULT_SEED

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable view (tuples become lists)."""
        fields = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}

    def hash(self) -> str:
        """Short stable hash of every field; equal configs give equal hashes."""
        payload = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


PRESETS: dict[str, DataConfig] = {"paper": DataConfig()}


def data_config(preset: str = "paper") -> DataConfig:
    """The data config of a named preset, or a clear error listing the known ones."""
    try:
        return PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise EcgPlatformError(f"unknown preset {preset!r}; known presets: {known}") from None


@dataclass(frozen=True)
class ModelConfig:
    """CNN1D architecture (DESIGN.md section 2); defaults give 67,169 parameters for 1x128."""

    num_blocks: int = 4
    block_channels: int = 32
    kernel_size: int = 5
    pool_size: int = 5
    pool_stride: int = 2
    hidden_units: int = 160


@dataclass(frozen=True)
class TrainConfig:
    """One training run (DESIGN.md section 3): optimiser, schedule, sampling, stopping."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Optimizer = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    scheduler: Scheduler = "reducelr"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    cyclic_base_lr_ratio: float = 0.1  # cycliclr: the rate cycles between lr * ratio and lr
    cyclic_half_cycle_epochs: int = 2  # cycliclr: epochs from the lowest rate to the highest
    weighted_sampling: bool = True
    encoder_lr_scale: float = 1.0  # the encoder's lr as a multiple of lr; 0 freezes it
    early_stopping: bool = False
    early_stopping_patience: int = 5
    early_stopping_min_epochs: int = 10
    threshold: float = 0.5
    seed: int = DEFAULT_SEED
    device: str = "auto"
    threads: int = 0  # CPU threads; 0: one for batches of 8 or fewer, else torch's default

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PatientHyperparams:
    """The per-patient settings that the grid search chooses."""

    batch_size: int
    lr: float
    weighted_sampling: bool


def _table(patients: str, batch: int, lr: float, weighted: bool) -> dict[str, PatientHyperparams]:
    return {p: PatientHyperparams(batch, lr, weighted) for p in patients.split()}


STUDY_HYPERPARAMS: dict[str, PatientHyperparams] = {
    **_table("100 102 203 213 215 217 231", 4, 1e-3, True),
    **_table("104 105 114 209", 4, 1e-3, False),
    **_table("119", 4, 1e-2, True),
    **_table("208", 4, 1e-2, False),
    **_table("106 116 202 210 212 223 228", 16, 1e-3, True),
    **_table("219 220", 16, 1e-2, True),
    **_table("201 205", 32, 1e-3, True),
    **_table("108 200", 32, 1e-2, True),
    **_table("221 222 233", 32, 1e-3, False),
}

PRETRAIN_DEFAULTS = TrainConfig(batch_size=32, weighted_sampling=True, early_stopping=False)
PATIENT_DEFAULTS = TrainConfig(early_stopping=True)
FINETUNE_DEFAULTS = PATIENT_DEFAULTS.replace(encoder_lr_scale=0.0)  # the study: frozen encoder


@dataclass(frozen=True)
class GridSpec:
    """The grid-search space (DESIGN.md section 3): each combination is one run per patient."""

    batch_sizes: tuple[int, ...] = (4, 16, 32)
    lrs: tuple[float, ...] = (0.1, 0.01, 0.001)
    weighted_sampling: tuple[bool, ...] = (True, False)

    def settings(self) -> list[PatientHyperparams]:
        """Every combination, in a fixed order (batch size, then lr, then sampling)."""
        axes = (self.batch_sizes, self.lrs, self.weighted_sampling)
        return [PatientHyperparams(*values) for values in itertools.product(*axes)]


@dataclass(frozen=True)
class Paths:
    """Where data and caches live: option, else environment variable, else these defaults."""

    data_dir_candidates: tuple[Path, ...] = field(
        default=(Path("data/mitdb"), Path("../shared/data/mitdb"))
    )
    cache_dir: Path = Path(".cache")
    report_dir: Path = Path("outputs/report")


PATHS = Paths()
DATA_DIR_ENV = "ECG_DATA_DIR"
CACHE_DIR_ENV = "ECG_CACHE_DIR"


def resolve_cache_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """`--cache-dir`, else `ECG_CACHE_DIR`, else `.cache/`."""
    if option:
        return Path(option)
    return Path(os.environ.get(CACHE_DIR_ENV) or PATHS.cache_dir)


@dataclass(frozen=True)
class TrackingNames:
    """MLflow naming: one experiment per stage, one registered model per stage (and patient)."""

    experiment_prefix: str = "ecg-"
    pretrained_model: str = "ecg-pretrained"
    patient_model_prefixes: tuple[tuple[str, str], ...] = (
        ("individual", "ecg-individual-"),
        ("finetune", "ecg-finetuned-"),
    )
    champion_alias: str = "champion"

    def experiment(self, stage: Stage) -> str:
        """The experiment of a stage, e.g. `ecg-pretrain`."""
        return f"{self.experiment_prefix}{stage}"

    def registered_model(self, stage: Stage, patient: str | None = None) -> str:
        """`ecg-pretrained`, or the per-patient name, e.g. `ecg-finetuned-105`."""
        if stage == "pretrain":
            return self.pretrained_model
        return f"{dict(self.patient_model_prefixes)[stage]}{patient}"

    @property
    def default_pretrained_uri(self) -> str:
        """What finetune starts from unless told otherwise."""
        return f"models:/{self.pretrained_model}@{self.champion_alias}"


TRACKING = TrackingNames()
