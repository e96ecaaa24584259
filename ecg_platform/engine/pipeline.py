"""A trained model with its data config, applied to a whole recording: what `ecg-platform
predict` and the served pipeline model both run, so that they give the same numbers.

The `paper` preset classifies every 1-second window. The recording is brought to the training
rate and preprocessed by the data layer's own functions (`filtered_windows`,
`resample_windows`), exactly as the training windows were; beats (annotated or detected) give the
beats per minute and sit in their windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ecg_platform.data.config import DataConfig
from ecg_platform.data.preprocess import (
    ABNORMAL,
    NORMAL,
    filtered_windows,
    label_windows,
    resample_windows,
)
from ecg_platform.data.qrs import BeatSource, Detector, beat_samples
from ecg_platform.data.signal_input import TRAINING_FS, Recording, at_rate
from ecg_platform.engine.inference import predict_proba
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.protocol import Classifier

CLASSES = ("normal", "abnormal")
REFERENCE_NAMES = {NORMAL: "normal", ABNORMAL: "abnormal"}  # other windows: "none"
Table = dict[str, np.ndarray]


@dataclass(frozen=True)
class Prediction:
    """Per-window and per-beat results of one recording (times in seconds of the source)."""

    record: str
    fs: float  # the input's rate: `sample` columns count at it
    offset_s: float
    duration_s: float
    window_s: float
    windows: Table  # start_s, end_s, sample, probability_abnormal, predicted, beats[, reference]
    beats: Table  # time_s, sample, window, probability_abnormal, predicted
    beat_source: str
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary and both tables as columns of plain lists."""
        return {
            "summary": self.summary(),
            "windows": {name: column.tolist() for name, column in self.windows.items()},
            "beats": {name: column.tolist() for name, column in self.beats.items()},
        }

    def summary(self) -> dict[str, Any]:
        """Counts per class, abnormal burden (% of windows), beats and beats per minute."""
        predicted = self.windows["predicted"]
        counts = {name: int(np.count_nonzero(predicted == name)) for name in CLASSES}
        n_beats = int(self.beats["time_s"].size)
        summary: dict[str, Any] = {
            "record": self.record,
            "fs": self.fs,
            "start_s": self.offset_s,
            "duration_s": round(self.duration_s, 3),
            "window_s": self.window_s,
            "windows": int(predicted.size),
            "class_counts": counts,
            "abnormal_burden_percent": round(100 * counts["abnormal"] / max(predicted.size, 1), 2),
            "beats": n_beats,
            "beats_per_minute": round(60 * n_beats / self.duration_s, 1),
            "beats_in_abnormal_windows": int(
                np.count_nonzero(self.beats["predicted"] == "abnormal")
            ),
            "beat_source": self.beat_source,
            "threshold": self.threshold,
        }
        if "reference" in self.windows:
            reference = self.windows["reference"]
            labelled = reference != "none"
            summary["reference_counts"] = {
                name: int(np.count_nonzero(reference == name)) for name in CLASSES
            }
            agree = np.count_nonzero(reference[labelled] == predicted[labelled])
            summary["reference_agreement"] = round(float(agree / max(labelled.sum(), 1)), 4)
        return summary


class WindowPipeline:
    """The `paper` pipeline: recording -> 1-second windows -> probability of abnormal."""

    def __init__(self, model: Classifier, data: DataConfig, threshold: float = 0.5) -> None:
        if model.config.num_outputs != 1:
            raise EcgPlatformError(
                f"the {data.preset} pipeline needs a binary model (one output), this one has "
                f"{model.config.num_outputs}"
            )
        self.model, self.data, self.threshold = model, data, threshold

    @property
    def window_s(self) -> float:
        """Seconds per window (1 s for `paper`)."""
        return self.data.window_length / TRAINING_FS

    def inputs(self, recording: Recording) -> np.ndarray:
        """The model inputs (n, 1, resample_length) float32, as the data layer makes them."""
        resampled = at_rate(recording)
        windows = filtered_windows(resampled.signal, resampled.fs, self.data)
        return resample_windows(windows, self.data.resample_length).astype(np.float32)[:, None]

    def run(
        self, recording: Recording, beats: BeatSource = "detected", detector: Detector = "gqrs"
    ) -> Prediction:
        """Window probabilities, predicted classes and the beats of `recording`."""
        resampled = at_rate(recording)
        x = self.inputs(resampled)
        probability = predict_proba(self.model, torch.from_numpy(x)).astype(np.float64)
        predicted = np.where(probability >= self.threshold, *CLASSES[::-1])
        starts = np.arange(probability.size) * self.window_s
        beat_at = beat_samples(recording, beats, detector)
        beat_time = beat_at / recording.fs
        beat_window = np.minimum((beat_time // self.window_s).astype(np.int64), starts.size - 1)
        windows: Table = {
            "window": np.arange(probability.size),
            "start_s": recording.offset_s + starts,
            "end_s": recording.offset_s + np.minimum(starts + self.window_s, recording.duration_s),
            "sample": np.round((recording.offset_s + starts) * recording.fs).astype(np.int64),
            "probability_abnormal": probability,
            "predicted": predicted,
            "beats": np.bincount(beat_window, minlength=probability.size),
        }
        if recording.has_annotations:
            windows["reference"] = self._reference(resampled, probability.size)
        return Prediction(
            record=recording.name,
            fs=recording.fs,
            offset_s=recording.offset_s,
            duration_s=recording.duration_s,
            window_s=self.window_s,
            windows=windows,
            beats={
                "time_s": recording.offset_s + beat_time,
                "sample": beat_at + round(recording.offset_s * recording.fs),
                "window": beat_window,
                "probability_abnormal": probability[beat_window],
                "predicted": predicted[beat_window],
            },
            beat_source=beats,
            threshold=self.threshold,
        )

    def _reference(self, resampled: Recording, n_windows: int) -> np.ndarray:
        """Each window's label from the `.atr` beats, as training labelled it (or `none`)."""
        labels = label_windows(
            resampled.annotation_samples, resampled.annotation_symbols, n_windows, self.data
        )
        return np.array([REFERENCE_NAMES.get(int(label), "none") for label in labels])
