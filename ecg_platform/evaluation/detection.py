"""QRS detection quality against reference beats, as ANSI/AAMI EC57 counts it: a detection
within 150 ms of a reference beat matches it (`wfdb.processing.compare_annotations`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_platform.data.qrs import MATCH_WINDOW_S


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
    from wfdb import processing

    window = round(MATCH_WINDOW_S * fs)
    comparison = processing.compare_annotations(np.asarray(reference), np.asarray(detected), window)
    return DetectionCounts(comparison.tp, comparison.fn, comparison.fp)
