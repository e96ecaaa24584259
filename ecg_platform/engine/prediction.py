"""What a pipeline says about one recording, in one shape for every preset: a table of what it
classified (1-second windows or beats), the beats it found, and a summary that a cardiologist
reads first (counts per class, abnormal burden, beats per minute).

The summary is built by each pipeline from the helpers here, so that both count, rate and compare
with the reference the same way while each keeps its own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Table = dict[str, np.ndarray]
Unit = Literal["window", "beat"]
NO_REFERENCE = "none"  # the reference of a row without a labelled annotation


@dataclass(frozen=True)
class Prediction:
    """Per-row results of one recording (times in seconds of the source, samples at its rate)."""

    record: str
    fs: float  # the input's rate: `sample` columns count at it
    offset_s: float
    unit: Unit  # what a row of `rows` is
    classes: tuple[str, ...]  # the model's classes in label order; the first is the normal one
    rows: Table  # predictions.csv: time, sample, probabilities, predicted[, reference]
    beats: Table | None  # beats.csv of a window model (each beat with its window's result)
    summary: dict[str, Any]

    @property
    def times(self) -> np.ndarray:
        """Each row's time: a window's start, a beat's R peak."""
        return self.rows["start_s" if self.unit == "window" else "time_s"]

    @property
    def flagged(self) -> np.ndarray:
        """Rows predicted as any class but the normal one."""
        return self.rows["predicted"] != self.classes[0]

    @property
    def abnormal_probability(self) -> np.ndarray:
        """Each row's probability of not being normal (what ranks the suspicious strips)."""
        if "probability_abnormal" in self.rows:
            return self.rows["probability_abnormal"]
        return 1.0 - self.rows[probability_column(self.classes[0])]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary and the tables as columns of plain lists."""
        tables = {f"{self.unit}s": self.rows} | (
            {"beats": self.beats} if self.beats is not None else {}
        )
        return {"summary": self.summary} | {
            name: {column: values.tolist() for column, values in table.items()}
            for name, table in tables.items()
        }


def probability_column(name: str) -> str:
    """The column of one class's probability, e.g. `probability_V`."""
    return f"probability_{name}"


def class_summary(predicted: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Rows per predicted class, and the abnormal burden: % of rows not of the normal class."""
    counts = {name: int(np.count_nonzero(predicted == name)) for name in classes}
    abnormal = predicted.size - counts[classes[0]]
    return {
        "class_counts": counts,
        "abnormal_burden_percent": round(100 * abnormal / max(predicted.size, 1), 2),
    }


def beats_per_minute(n_beats: int, duration_s: float) -> float:
    """The mean heart rate over the recording."""
    return round(60 * n_beats / duration_s, 1)


def reference_summary(
    reference: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Rows per reference class, and the share of labelled rows predicted as their reference."""
    labelled = reference != NO_REFERENCE
    agree = np.count_nonzero(reference[labelled] == predicted[labelled])
    return {
        "reference_counts": {name: int(np.count_nonzero(reference == name)) for name in classes},
        "reference_agreement": round(float(agree / max(labelled.sum(), 1)), 4),
    }
