"""Beat positions of a recording: the reference annotations, or R peaks found by a QRS detector
of `wfdb.processing` (GQRS or XQRS), for recordings without annotations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from ecg_platform.data.labels import annotated_beat_classes
from ecg_platform.errors import EcgPlatformError

if TYPE_CHECKING:
    from ecg_platform.data.signal_input import Recording

Detector = Literal["gqrs", "xqrs"]
BeatSource = Literal["detected", "annotations"]
DETECTORS: tuple[str, ...] = ("gqrs", "xqrs")
BEAT_SOURCES: tuple[str, ...] = ("detected", "annotations")
# Each detector runs at this rate at most: a third (gqrs) or half (xqrs) of the work at 360 Hz
# for the same sensitivity and positive predictivity on the 44 records (xqrs loses 1.2 points of
# +P at 120 Hz; benchmarks/bench_detection.py, README "Use a model").
DETECTION_FS: dict[str, float] = {"gqrs": 120.0, "xqrs": 180.0}
MATCH_WINDOW_S = 0.15  # ANSI/AAMI EC57: a detection within 150 ms of a reference beat matches


def beat_samples(recording: Recording, source: BeatSource, detector: Detector) -> np.ndarray:
    """Sorted beat samples (int64): the annotated beats (`annotations`, needs an `.atr`) or the
    detector's R peaks."""
    if source == "annotations":
        return annotated_beats(recording)
    return detect_beats(recording.signal, recording.fs, detector)


def annotated_beats(recording: Recording) -> np.ndarray:
    """Samples of the reference annotations that are beats (AAMI classes; no rhythm or noise)."""
    if not recording.has_annotations:
        raise EcgPlatformError(
            f"record {recording.name} has no .atr annotations; use detected beats instead"
        )
    samples, _ = annotated_beat_classes(recording.annotation_samples, recording.annotation_symbols)
    return samples


def detect_beats(signal: np.ndarray, fs: float, detector: Detector = "gqrs") -> np.ndarray:
    """R-peak samples (int64, sorted, at `fs`) found in `signal` (mV) by `detector`, run at its
    `DETECTION_FS` at most."""
    from wfdb import processing

    from ecg_platform.data.signal_input import resample

    if detector not in DETECTORS:
        raise EcgPlatformError(f"unknown QRS detector {detector!r}; known: {', '.join(DETECTORS)}")
    rate = min(fs, DETECTION_FS[detector])
    low = signal if rate == fs else resample(signal, fs, rate)
    if detector == "gqrs":
        found = processing.gqrs_detect(sig=low, fs=rate)
    else:
        xqrs = processing.XQRS(sig=low, fs=rate)
        xqrs.detect(verbose=False)
        found = xqrs.qrs_inds
    return np.unique(np.round(np.asarray(found) * fs / rate).astype(np.int64))
