"""The data protocols by preset: the study's window config (`paper`), the beat presets, paths.

docs/protocol.md describes every field. The config's hash keys the cache and every run, so a
change here is a new protocol, never a silent edit of an old one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecg_platform.data.beat_config import BEAT_PRESETS, BeatConfig
from ecg_platform.errors import EcgPlatformError

DEFAULT_SEED = 42
ABNORMAL_SYMBOLS = ("L", "R", "V", "A", "a", "j", "S", "F", "E", "e", "r", "!", "f", "/")
NORMAL_SYMBOLS = ("N",)
DATA_DIR_ENV = "ECG_DATA_DIR"
CACHE_DIR_ENV = "ECG_CACHE_DIR"


@dataclass(frozen=True)
class DataConfig:
    """The preprocessing protocol (docs/protocol.md); its hash keys caches and runs."""

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

    @property
    def input_length(self) -> int:
        """Samples of one model input."""
        return self.resample_length

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes, in label order."""
        return ("normal", "abnormal")

    @property
    def side_features(self) -> int:
        """Values the model gets beside each window: none."""
        return 0

    @property
    def seed(self) -> int:
        """The seed of the splits."""
        return self.split_seed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable view (tuples become lists)."""
        fields = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}

    def hash(self) -> str:
        """Short stable hash of every field; equal configs give equal hashes."""
        payload = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


PRESETS: dict[str, DataConfig] = {"paper": DataConfig()}
ProtocolConfig = DataConfig | BeatConfig  # the study's windows, or a standard beat protocol


def data_config(
    preset: str = "paper",
    seed: int | None = None,
    label_set: str | None = None,
    rr_features: bool | None = None,
    median_deviation: bool | None = None,
    rr_variability: bool | None = None,
) -> ProtocolConfig:
    """The config of a named preset, with another seed, label set, RR-feature, median-deviation
    or RR-variability choice where given; a one-line error for an unknown preset or a choice the
    preset does not offer."""
    if preset in BEAT_PRESETS:
        config = BEAT_PRESETS[preset]
        extraction = {"median_deviation": median_deviation, "rr_variability": rr_variability}
        changes = {"seed": seed, "label_set": label_set, "rr_features": rr_features}
        return dataclasses.replace(
            config,
            extraction=dataclasses.replace(config.extraction, **_given(extraction)),
            **_given(changes),
        )
    if preset not in PRESETS:
        known = ", ".join(sorted([*PRESETS, *BEAT_PRESETS]))
        raise EcgPlatformError(f"unknown preset {preset!r}; known presets: {known}")
    if label_set not in (None, "binary") or rr_features or median_deviation or rr_variability:
        raise EcgPlatformError(
            f"preset {preset!r} has 1-second windows labelled normal/abnormal only: label set "
            "binary, no RR features, median deviation or RR variability (the beat presets offer "
            "them)"
        )
    config = PRESETS[preset]
    return config if seed is None else dataclasses.replace(config, split_seed=seed)


def _given(choices: dict[str, Any]) -> dict[str, Any]:
    """The choices that were made (not None)."""
    return {name: value for name, value in choices.items() if value is not None}


@dataclass(frozen=True)
class DataPaths:
    """Where data and caches live: option, else environment variable, else these defaults."""

    data_dir_candidates: tuple[Path, ...] = field(
        default=(Path("data/mitdb"), Path("../shared/data/mitdb"))
    )
    cache_dir: Path = Path(".cache")


DATA_PATHS = DataPaths()


def resolve_cache_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """`--cache-dir`, else `ECG_CACHE_DIR`, else `.cache/`."""
    if option:
        return Path(option)
    return Path(os.environ.get(CACHE_DIR_ENV) or DATA_PATHS.cache_dir)
