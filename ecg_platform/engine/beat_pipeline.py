"""The beat presets' pipeline: a model trained on one input per beat, applied to every beat of a
whole recording, so that `predict` and the served pipeline give the training's numbers.

The recording, brought to the training rate, is one part of the data layer's extraction
(`beats.beat_inputs` with bounds [0, n]): min-max normalised, band-passed and percentile-scaled as
a patient's first minutes were, each beat cut, resampled and given its RR features by the same
code. Beats are the `.atr`'s (`annotations`) or a QRS detector's R peaks. A beat whose window
runs past an edge, or that lacks a neighbour for its RR intervals, has no input: it is counted
(`beats_skipped`), as training drops it too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.beats import BeatInputs, beat_inputs
from ecg_platform.data.labels import annotated_beat_classes, apply_label_set
from ecg_platform.data.qrs import MATCH_WINDOW_S, BeatSource, Detector, beat_samples
from ecg_platform.data.signal_input import TRAINING_FS, Recording, at_rate
from ecg_platform.engine.inference import predict_proba
from ecg_platform.engine.prediction import (
    NO_REFERENCE,
    Prediction,
    Table,
    beats_per_minute,
    class_summary,
    probability_column,
    reference_summary,
)
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.protocol import Classifier


class BeatPipeline:
    """A beat preset's pipeline: recording -> beats -> each beat's class probabilities."""

    def __init__(self, model: Classifier, data: BeatConfig, threshold: float = 0.5) -> None:
        outputs = 1 if len(data.class_names) == 2 else len(data.class_names)
        given = (model.config.num_outputs, model.config.extra_features)
        if given != (outputs, data.side_features):
            raise EcgPlatformError(
                f"the {data.preset} pipeline (label set {data.label_set}, {data.side_features} "
                f"RR features) needs a model of {outputs} output(s) and {data.side_features} side "
                f"features; this one has {given[0]} and {given[1]}"
            )
        self.model, self.data, self.threshold = model, data, threshold

    def inputs(self, resampled: Recording, beats: np.ndarray) -> BeatInputs:
        """The inputs of the beats at `beats` (samples of the recording at the training rate),
        the whole recording as one part of the extraction."""
        bounds = np.array([0, resampled.signal.size], dtype=np.int64)
        return beat_inputs(resampled.signal, TRAINING_FS, beats, bounds, self.data.extraction)

    def probabilities(self, inputs: BeatInputs) -> np.ndarray:
        """(n, K) class probabilities, or (n,) of abnormal for a binary model."""
        x = torch.from_numpy(inputs.x[:, None])
        side = torch.from_numpy(inputs.rr) if self.data.rr_features else None
        return predict_proba(self.model, x, side).astype(np.float64)

    def run(
        self, recording: Recording, beats: BeatSource = "detected", detector: Detector = "gqrs"
    ) -> Prediction:
        """Each usable beat's time, sample, class probabilities and predicted class."""
        resampled = at_rate(recording)
        found = beat_samples(resampled, beats, detector)
        inputs = self.inputs(resampled, found)
        if not inputs.keep.any():
            raise EcgPlatformError(
                f"none of the {found.size} beats of {recording.name} can be classified: each "
                "needs its whole window inside the recording and a beat before and after it"
            )
        at = found[inputs.keep]
        time_s = at / TRAINING_FS
        classes = self.data.class_names
        probability = self.probabilities(inputs)
        rows: Table = {
            "beat": np.arange(at.size),
            "time_s": recording.offset_s + time_s,
            "sample": np.round((recording.offset_s + time_s) * recording.fs).astype(np.int64),
        }
        if probability.ndim == 1:
            rows["probability_abnormal"] = probability
            rows["predicted"] = np.where(probability >= self.threshold, *classes[::-1])
        else:
            rows |= {probability_column(c): probability[:, k] for k, c in enumerate(classes)}
            rows["predicted"] = np.asarray(classes)[probability.argmax(axis=1)]
        summary: dict[str, Any] = {
            "record": recording.name,
            "fs": recording.fs,
            "start_s": recording.offset_s,
            "duration_s": round(recording.duration_s, 3),
            "beats": int(found.size),
            "beats_classified": int(at.size),
            "beats_skipped": inputs.n_dropped,
            **class_summary(rows["predicted"], classes),
            "beats_per_minute": beats_per_minute(found.size, recording.duration_s),
            "beat_source": beats,
        }
        if probability.ndim == 1:
            summary["threshold"] = self.threshold
        if resampled.has_annotations:
            rows["reference"] = self._reference(resampled, at)
            summary |= reference_summary(rows["reference"], rows["predicted"], classes)
        return Prediction(
            record=recording.name,
            fs=recording.fs,
            offset_s=recording.offset_s,
            unit="beat",
            classes=classes,
            rows=rows,
            beats=None,
            summary=summary,
        )

    def _reference(self, resampled: Recording, beats: np.ndarray) -> np.ndarray:
        """Each beat's class in the model's label set from the nearest annotated beat within
        150 ms (EC57's matching window), else `none`."""
        reference, aami = annotated_beat_classes(
            resampled.annotation_samples, resampled.annotation_symbols
        )
        names = np.asarray(self.data.class_names)[apply_label_set(aami, self.data.label_set)]
        if reference.size == 0:
            return np.full(beats.size, NO_REFERENCE)
        right = np.searchsorted(reference, beats).clip(0, reference.size - 1)
        left = np.maximum(right - 1, 0)
        closer_left = np.abs(reference[left] - beats) <= np.abs(reference[right] - beats)
        nearest = np.where(closer_left, left, right)
        matched = np.abs(reference[nearest] - beats) <= round(MATCH_WINDOW_S * TRAINING_FS)
        return np.where(matched, names[nearest], NO_REFERENCE)
