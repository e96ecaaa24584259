"""QRS detection quality against reference beats, as ANSI/AAMI EC57 counts it: a detection
within 150 ms of a reference beat matches it (`wfdb.processing.compare_annotations`); and the
class confusion of an end-to-end pipeline on detected beats, misses and extras included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ecg_platform.data.qrs import MATCH_WINDOW_S
from ecg_platform.evaluation.aami import confusion

if TYPE_CHECKING:
    from wfdb.processing import Comparitor


@dataclass(frozen=True)
class DetectionCounts:
    """Matched (tp), missed (fn) and extra (fp) beats; summing counts pools records (gross)."""

    tp: int
    fn: int
    fp: int

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)

    @property
    def sensitivity(self) -> float:
        """Se = TP / (TP + FN); NaN without reference beats."""
        total = self.tp + self.fn
        return self.tp / total if total else float("nan")

    @property
    def positive_predictivity(self) -> float:
        """+P = TP / (TP + FP); NaN without detections."""
        total = self.tp + self.fp
        return self.tp / total if total else float("nan")


def detection_counts(reference: np.ndarray, detected: np.ndarray, fs: float) -> DetectionCounts:
    """Match `detected` against `reference` beat samples within 150 ms."""
    comparison = _compare(reference, detected, fs)
    return DetectionCounts(comparison.tp, comparison.fn, comparison.fp)


def matched_offsets(reference: np.ndarray, detected: np.ndarray, fs: float) -> np.ndarray:
    """Detected minus reference sample of each matched pair: where the detector puts a beat
    relative to the reference R peak that the beat models' windows are centred on."""
    pairs = _compare(reference, detected, fs)
    return (
        np.asarray(detected)[pairs.matched_test_inds]
        - np.asarray(reference)[pairs.matched_ref_inds]
    )


def detected_beat_confusion(
    reference: np.ndarray,
    reference_class: np.ndarray,
    detected: np.ndarray,
    detected_class: np.ndarray,
    fs: float,
    n_classes: int,
    left_out: np.ndarray | None = None,
) -> np.ndarray:
    """The (K+1) x (K+1) matrix of a pipeline's classes on detected beats, as `bxb` counts:
    a reference beat (row: its class) and the detection within 150 ms that matches it (column:
    the predicted class); column K holds the reference beats no detection matched (missed), row
    K the detections that match no reference beat (extra). Classes are indices 0..K-1; name
    index K `aami.MISSED` for the VEB/SVEB statistics. Reference beats flagged in `left_out`
    (e.g. training beats inside a test part) are matched like the others, then left out with
    the detection matching them, so that it does not turn into an extra one."""
    pairs = _compare(reference, detected, fs)
    scored = ~left_out if left_out is not None else np.ones(reference.size, dtype=bool)
    matched = scored[pairs.matched_ref_inds]
    missed = pairs.unmatched_ref_inds[scored[pairs.unmatched_ref_inds]]
    none = n_classes
    truth = np.concatenate(
        [
            reference_class[pairs.matched_ref_inds[matched]],
            reference_class[missed],
            np.full(pairs.unmatched_test_inds.size, none),
        ]
    )
    predicted = np.concatenate(
        [
            detected_class[pairs.matched_test_inds[matched]],
            np.full(missed.size, none),
            detected_class[pairs.unmatched_test_inds],
        ]
    )
    return confusion(truth, predicted, n_classes + 1)


def qrs_counts(matrix: np.ndarray) -> DetectionCounts:
    """Matched, missed and extra beats of a `detected_beat_confusion` matrix (pooled ones too)."""
    counts = np.asarray(matrix)
    return DetectionCounts(
        int(counts[:-1, :-1].sum()), int(counts[:-1, -1].sum()), int(counts[-1].sum())
    )


def _compare(reference: np.ndarray, detected: np.ndarray, fs: float) -> Comparitor:
    from wfdb import processing

    window = round(MATCH_WINDOW_S * fs)
    return processing.compare_annotations(np.asarray(reference), np.asarray(detected), window)
