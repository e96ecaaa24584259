"""A trained model with its data config, applied to a whole recording: what `ecg-platform
predict` and the served pipeline model both run, so that they give the same numbers.

`build_pipeline` picks the preset's pipeline: the beat presets' is `beat_pipeline.BeatPipeline`;
the `paper` preset's, here, classifies every 1-second window. The recording is brought to the
training rate and preprocessed by the data layer's own functions (`filtered_windows`,
`resample_windows`), exactly as the training windows were; beats (annotated or detected) give the
beats per minute and sit in their windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.config import DataConfig, ProtocolConfig
from ecg_platform.data.preprocess import (
    ABNORMAL,
    NORMAL,
    filtered_windows,
    label_windows,
    resample_windows,
)
from ecg_platform.data.qrs import BeatSource, Detector, beat_samples
from ecg_platform.data.signal_input import TRAINING_FS, Recording, at_rate
from ecg_platform.engine.beat_pipeline import BeatPipeline
from ecg_platform.engine.inference import predict_proba
from ecg_platform.engine.prediction import (
    NO_REFERENCE,
    Prediction,
    Table,
    beats_per_minute,
    class_summary,
    reference_summary,
)
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.protocol import Classifier

CLASSES = ("normal", "abnormal")
REFERENCE_NAMES = {NORMAL: "normal", ABNORMAL: "abnormal"}  # other windows: "none"


def build_pipeline(network: Classifier, data: ProtocolConfig) -> WindowPipeline | BeatPipeline:
    """The pipeline of the data config's preset (1-second windows, or beats) around a trained
    network: what `predict` and the served pipeline model both build."""
    if isinstance(data, BeatConfig):
        return BeatPipeline(network, data)
    return WindowPipeline(network, data)


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
        summary: dict[str, Any] = {
            "record": recording.name,
            "fs": recording.fs,
            "start_s": recording.offset_s,
            "duration_s": round(recording.duration_s, 3),
            "window_s": self.window_s,
            "windows": int(probability.size),
            **class_summary(predicted, CLASSES),
            "beats": int(beat_at.size),
            "beats_per_minute": beats_per_minute(beat_at.size, recording.duration_s),
            "beats_in_abnormal_windows": int(
                np.count_nonzero(predicted[beat_window] == CLASSES[1])
            ),
            "beat_source": beats,
            "threshold": self.threshold,
        }
        if recording.has_annotations:
            windows["reference"] = self._reference(resampled, probability.size)
            summary |= reference_summary(windows["reference"], predicted, CLASSES)
        return Prediction(
            record=recording.name,
            fs=recording.fs,
            offset_s=recording.offset_s,
            unit="window",
            classes=CLASSES,
            rows=windows,
            beats={
                "time_s": recording.offset_s + beat_time,
                "sample": beat_at + round(recording.offset_s * recording.fs),
                "window": beat_window,
                "probability_abnormal": probability[beat_window],
                "predicted": predicted[beat_window],
            },
            summary=summary,
        )

    def _reference(self, resampled: Recording, n_windows: int) -> np.ndarray:
        """Each window's label from the `.atr` beats, as training labelled it (or `none`)."""
        labels = label_windows(
            resampled.annotation_samples, resampled.annotation_symbols, n_windows, self.data
        )
        return np.array([REFERENCE_NAMES.get(int(label), NO_REFERENCE) for label in labels])
