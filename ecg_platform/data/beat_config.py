"""Typed configuration of the beat protocols (`patient-specific`, `inter-patient`) and presets.

`BeatExtraction` is what turns one record into beats (its hash keys the per-record cache, shared
by every protocol); `BeatConfig` adds the protocol, label set and splits (its hash keys runs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ecg_platform.data.labels import LABEL_SETS, check_label_set
from ecg_platform.data.protocols import DS1, DS1_VALIDATION
from ecg_platform.errors import EcgPlatformError

BeatProtocol = Literal["patient-specific", "inter-patient"]
CommonPool = Literal["whole-record", "first-minutes"]
PROTOCOLS: tuple[str, ...] = ("patient-specific", "inter-patient")
COMMON_POOLS: tuple[str, ...] = ("whole-record", "first-minutes")
_LATER_FIELDS = ("median_deviation", "rr_variability")  # BeatExtraction fields hashed when set
RR_FEATURES = ("pre_rr_s", "post_rr_s", "local_rr_s", "pre_over_local", "post_over_local")
RR_VARIABILITY_FEATURE = "local_rr_cv"  # appended to RR_FEATURES with `rr_variability`


def _short_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class BeatExtraction:
    """One record to beat-centred inputs and RR features.

    A record is cut at `train_minutes` into two segments (the first is a patient's training part,
    the rest its test part); each segment is min-max normalised and band-passed on its own, and
    windows and RR intervals never cross a segment edge, so no training input depends on a sample
    of the test part."""

    channel: int = 0
    filter_low_hz: float = 0.4
    filter_high_hz: float = 30.0
    filter_order: int = 3
    # The window reaches back over the previous beat (at rates above 67/min), whose distance
    # and the P wave between tell S beats from N: fine-tuned SVEB F1 70.1 -> 74.7 over 5 seeds
    # (docs/results.md section 5). Reaching forward over the next beat did not help.
    before_s: float = 0.9  # window start before the R peak (the .atr sample)
    after_s: float = 0.45  # window end after it; 1.35 s = 486 samples at 360 Hz
    input_length: int = 243  # resampled length (180 Hz): the R peak lands on index 162
    rr_local_beats: int = 10  # the causal local mean averages this many preceding RR intervals
    train_minutes: float = 5.0
    # Min-max scaling depends on a segment's extreme samples, so the 25-minute test part came
    # out at about half the amplitude of the 5-minute training part (docs/results.md section 5):
    # dividing each filtered segment by its 1st-99th percentile range gives both the same scale.
    percentile_scale: bool = True
    # Each input followed by its difference from the segment's reference beat, the median input
    # of its least premature quarter (no label: as the percentile scale reads the segment's
    # samples): what differs from the patient's own sinus beat. On in the inter-patient preset,
    # where `reproduce` (3 repeats) raised the generic DS2 VEB F1 79.6 -> 90.2 and SVEB F1
    # 39.3 -> 63.0, fine-tuned figures level; off in the patient-specific ones, where three
    # seeds gave fine-tuned SVEB F1 -3.5, VEB F1 +0.3 (docs/results.md section 5).
    median_deviation: bool = False
    # One more RR feature: the coefficient of variation of the intervals the local mean averages.
    # A premature beat in an irregular rhythm (atrial fibrillation, ectopy) is not an S beat;
    # in a steady one it is. Off in every preset: on inter-patient `reproduce` (3 repeats) gave
    # generic DS2 SVEB F1 63.0 -> 57.9 (+11.8, -5.8, -21.3 by seed), VEB F1 90.2 -> 91.6
    # (docs/results.md section 6).
    rr_variability: bool = False

    def __post_init__(self) -> None:
        if self.before_s <= 0 or self.after_s <= 0 or self.input_length < 2:
            raise EcgPlatformError(
                "beat window needs before_s > 0, after_s > 0 and input_length >= 2"
            )
        if self.rr_local_beats < 1 or self.train_minutes < 0:
            raise EcgPlatformError("rr_local_beats must be >= 1 and train_minutes >= 0")

    def window_samples(self, fs: float) -> tuple[int, int]:
        """Samples taken before and after the R peak at sampling rate `fs`."""
        return round(self.before_s * fs), round(self.after_s * fs)

    def r_peak_index(self, fs: float) -> float:
        """Where the R peak sits in every input (an integer for the defaults at 360 Hz: 45.0)."""
        before, after = self.window_samples(fs)
        return before * self.input_length / (before + after)

    @property
    def model_input_length(self) -> int:
        """Samples of one model input: the window, and its median deviation if asked for."""
        return self.input_length * (2 if self.median_deviation else 1)

    @property
    def rr_feature_names(self) -> tuple[str, ...]:
        """The columns of the extracted RR features."""
        return (*RR_FEATURES, RR_VARIABILITY_FEATURE) if self.rr_variability else RR_FEATURES

    def to_dict(self) -> dict[str, Any]:
        """Every field, but those added since stores exist left out at their defaults, so that
        the caches and runs of the configs before them keep their hashes."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        fields = dataclasses.asdict(self)
        return {k: v for k, v in fields.items() if k not in _LATER_FIELDS or v != defaults[k]}

    def hash(self) -> str:
        """Short stable hash of every field (`to_dict`): the per-record cache key."""
        return _short_hash(self.to_dict())


@dataclass(frozen=True)
class BeatConfig:
    """A beat protocol (docs/beat-protocols.md); resolved once from a preset, its hash keys runs."""

    preset: str = "patient-specific"
    protocol: BeatProtocol = "patient-specific"
    label_set: str = "aami"
    rr_features: bool = True  # the RR features beside the inputs: they win (docs/results.md §5)
    extraction: BeatExtraction = field(default_factory=BeatExtraction)
    common_per_class: int = 75  # patient-specific: up to this many beats per AAMI class
    common_pool: CommonPool = "whole-record"  # records 100-124 whole, or their first minutes
    val_fraction: float = 0.2  # of a patient's first minutes, stratified by class
    val_records: tuple[str, ...] = ()  # inter-patient: whole DS1 records held out for validation
    seed: int = 42

    def __post_init__(self) -> None:
        check_label_set(self.label_set)
        if self.protocol not in PROTOCOLS:
            raise EcgPlatformError(
                f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}"
            )
        if self.common_pool not in COMMON_POOLS:
            raise EcgPlatformError(
                f"unknown common pool {self.common_pool!r}; known: {', '.join(COMMON_POOLS)}"
            )
        if not 0 <= self.val_fraction < 1 or self.common_per_class < 0:
            raise EcgPlatformError("val_fraction must be in [0, 1) and common_per_class >= 0")
        pool = DS1 if self.protocol == "inter-patient" else ()
        stray = sorted(set(self.val_records) - set(pool))
        if stray:
            raise EcgPlatformError(
                f"val_records {' '.join(stray)} are not pool records of the {self.protocol} "
                f"protocol; validation records come from DS1: {' '.join(DS1)}"
            )

    @property
    def input_length(self) -> int:
        """Samples of one model input."""
        return self.extraction.model_input_length

    @property
    def channel(self) -> int:
        """The record's channel that the beats are cut from."""
        return self.extraction.channel

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes of the label set, in label order."""
        return LABEL_SETS[self.label_set]

    @property
    def side_features(self) -> int:
        """Per-beat values the model gets beside the input: the RR features, if asked for."""
        return len(self.extraction.rr_feature_names) if self.rr_features else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable view (tuples become lists, `extraction` a nested dict)."""
        fields = dataclasses.asdict(self) | {"extraction": self.extraction.to_dict()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}

    def hash(self) -> str:
        """Short stable hash of every field; equal configs give equal hashes."""
        return _short_hash(self.to_dict())


BEAT_PRESETS: dict[str, BeatConfig] = {
    "patient-specific": BeatConfig(),
    "inter-patient": BeatConfig(
        preset="inter-patient",
        protocol="inter-patient",
        extraction=BeatExtraction(median_deviation=True),  # docs/results.md section 6
        val_records=DS1_VALIDATION,
    ),
    "patient-specific-strict": BeatConfig(
        preset="patient-specific-strict", common_pool="first-minutes"
    ),
}


def beat_config(preset: str) -> BeatConfig:
    """The config of a beat preset, or a one-line error listing the known ones."""
    try:
        return BEAT_PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(BEAT_PRESETS))
        raise EcgPlatformError(f"unknown beat preset {preset!r}; known presets: {known}") from None
