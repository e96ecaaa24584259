"""Beat positions of a recording: the reference annotations, or R peaks found by a QRS detector
of `wfdb.processing` (GQRS or XQRS) and moved onto the signal's R peak, for recordings without
annotations."""

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
# `correct_peaks` settings, chosen on the 44 records against the `.atr` (the R peak the beat
# models' windows are centred on). gqrs marks beats a median 36 ms early (56 ms on record
# 117): a 75 ms radius reaches the R peak and stops short of the T wave. The peak is the
# largest deviation either way from a 200 ms moving average ('both'): a 100 ms one flattens
# wide V complexes (71.8% of V beats within 3 samples, 86.7% with 200 ms); 'up' sends
# negative V complexes to a small positive wave (record 207: -42 ms) and 'compare' picks one
# direction per record (108: +31 ms). Matched beats within 3 samples of the `.atr`: 1.4% as
# gqrs detected them, 96.2% corrected (gqrs at 120 Hz).
PEAK_SEARCH_S = 0.075
PEAK_SMOOTH_S = 0.2


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
    `DETECTION_FS` at most, each moved onto its R peak at `fs` (`on_r_peaks`)."""
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
    return on_r_peaks(signal, fs, np.round(np.asarray(found) * fs / rate).astype(np.int64))


def on_r_peaks(signal: np.ndarray, fs: float, samples: np.ndarray) -> np.ndarray:
    """`samples` each moved to the largest deviation of `signal`, either sign, within
    `PEAK_SEARCH_S` (`wfdb.processing.correct_peaks`); sorted, two moved onto one peak kept
    once. The beat models trained on windows centred on the `.atr`'s R peak; gqrs marks beats
    before it, xqrs near it but with a wide spread (`benchmarks/bench_detection.py`)."""
    from wfdb import processing

    radius = round(PEAK_SEARCH_S * fs)
    # correct_peaks moves a sample within `radius` of the start to a wrong (even negative) one
    # (wfdb 4.3); padding the start by `radius` keeps every search inside the padded signal
    padded = np.pad(signal, (radius, 0), mode="edge")
    moved = processing.correct_peaks(
        padded,
        np.asarray(samples, dtype=np.int64) + radius,
        radius,
        round(PEAK_SMOOTH_S * fs),
        "both",
    )
    return np.unique(np.clip(moved - radius, 0, signal.size - 1)).astype(np.int64)
