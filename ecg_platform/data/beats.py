"""One record to beat-centred inputs, AAMI classes and causal RR features (vectorised).

Every annotated beat (AAMI symbol, R peak at its `.atr` sample) gives one window of
`before_s + after_s` around the peak, cut from its segment's normalised, band-passed and
scaled signal and resampled to `input_length` (polyphase, `scipy.signal.resample_poly`). A beat
is kept when its window fits inside its segment and it has a previous and a next beat there (its
RR intervals); the others are counted in `dropped`.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from ecg_platform.data.beat_config import RR_FEATURES, BeatExtraction
from ecg_platform.data.labels import AAMI_CLASSES, annotated_beat_classes
from ecg_platform.data.mitdb import Record
from ecg_platform.data.preprocess import bandpass, normalise

N_SEGMENTS = 2  # 0: the first `train_minutes`, 1: the rest of the record
SCALE_PERCENTILES = (1.0, 99.0)  # the range that `percentile_scale` divides a segment by
REFERENCE_QUANTILE = 0.75  # the reference beat of `median_deviation`: beats at least this late


@dataclass(frozen=True)
class RecordBeats:
    """The kept beats of one record, in time order."""

    record: str
    x: np.ndarray  # (n, model_input_length) float32 beat-centred inputs
    aami: np.ndarray  # (n,) int64 index into AAMI_CLASSES
    rr: np.ndarray  # (n, len(extraction.rr_feature_names)) float32
    sample: np.ndarray  # (n,) int64 R-peak sample (the annotation position)
    segment: np.ndarray  # (n,) uint8: 0 = first train_minutes, 1 = the rest
    dropped: np.ndarray  # (N_SEGMENTS, 5) int64 beats per segment and class not kept

    @property
    def n_beats(self) -> int:
        """Kept beats."""
        return int(self.aami.size)


def extract_beats(record: Record, extraction: BeatExtraction) -> RecordBeats:
    """Beat inputs, classes, RR features and segments of `record`."""
    samples, classes = annotated_beat_classes(record.annotation_samples, record.annotation_symbols)
    bounds = segment_bounds(record.signal.size, record.fs, extraction.train_minutes)
    inputs = beat_inputs(record.signal, record.fs, samples, bounds, extraction)
    keep = inputs.keep
    dropped = np.zeros((N_SEGMENTS, len(AAMI_CLASSES)), dtype=np.int64)
    np.add.at(dropped, (inputs.segment[~keep], classes[~keep]), 1)
    return RecordBeats(
        record=record.name,
        x=inputs.x,
        aami=classes[keep],
        rr=inputs.rr,
        sample=samples[keep],
        segment=inputs.segment[keep].astype(np.uint8),
        dropped=dropped,
    )


@dataclass(frozen=True)
class BeatInputs:
    """The model inputs of given beats, and which of them the extraction could use."""

    x: np.ndarray  # (k, model_input_length) float32, one per kept beat
    rr: np.ndarray  # (k, len(extraction.rr_feature_names)) float32
    segment: np.ndarray  # (n,) int64: the segment of every given beat
    keep: np.ndarray  # (n,) bool: its window inside its segment, a neighbour on either side

    @property
    def n_dropped(self) -> int:
        """Given beats without an input (window past an edge, or no neighbour for RR)."""
        return int(np.count_nonzero(~self.keep))


def beat_inputs(
    signal: np.ndarray,
    fs: float,
    samples: np.ndarray,
    bounds: np.ndarray,
    extraction: BeatExtraction,
) -> BeatInputs:
    """Inputs and RR features of the beats at sorted `samples`, each segment of `bounds` filtered
    alone: the one code path of training (a record cut at `train_minutes`) and of prediction (a
    recording as a single segment, bounds [0, n])."""
    segment = (np.searchsorted(bounds, samples, side="right") - 1).clip(0, bounds.size - 2)
    before, after = extraction.window_samples(fs)
    rr, has_neighbours = rr_features(
        samples, segment, fs, extraction.rr_local_beats, extraction.rr_variability
    )
    fits = (samples - before >= bounds[segment]) & (samples + after <= bounds[segment + 1])
    keep = fits & has_neighbours
    filtered = preprocess_segments(signal, fs, extraction, bounds, before + after)
    x = beat_windows(filtered, samples[keep], before, after, extraction.input_length)
    return BeatInputs(
        x=with_median_deviation(x, segment[keep], rr[keep]) if extraction.median_deviation else x,
        rr=rr[keep].astype(np.float32),
        segment=segment,
        keep=keep,
    )


def segment_bounds(n_samples: int, fs: float, train_minutes: float) -> np.ndarray:
    """[0, cut, n_samples]: segment k spans samples bounds[k] to bounds[k + 1] (exclusive)."""
    cut = min(round(train_minutes * 60 * fs), n_samples)
    return np.array([0, cut, n_samples], dtype=np.int64)


def preprocess_segments(
    signal: np.ndarray,
    fs: float,
    extraction: BeatExtraction,
    bounds: np.ndarray,
    min_length: int,
) -> np.ndarray:
    """The study's filtering (min-max, zero-phase band-pass) applied to each segment alone, then,
    with `percentile_scale`, the segment divided by the range between its 1st and 99th
    percentiles: a scale that a few extreme samples do not set, so that a patient's training
    and test parts come out alike.

    A segment shorter than one window holds no kept beat and stays zero."""
    filtered = np.zeros(signal.size, dtype=np.float64)
    for start, end in itertools.pairwise(bounds):
        if end - start >= min_length:
            part = bandpass(normalise(signal[start:end]), fs, extraction)
            if extraction.percentile_scale:
                low, high = np.percentile(part, SCALE_PERCENTILES)
                part /= max(high - low, np.finfo(np.float64).tiny)
            filtered[start:end] = part
    return filtered


def beat_windows(
    filtered: np.ndarray, samples: np.ndarray, before: int, after: int, input_length: int
) -> np.ndarray:
    """(n, input_length) float32 windows [s - before, s + after) resampled (R at the same index).

    Output sample k of `resample_poly` sits at input position k * (before + after) / input_length,
    so the R peak (input index `before`) lands at before * input_length / (before + after)."""
    length = before + after
    windows = filtered.astype(np.float32)[samples[:, None] + np.arange(-before, after)]
    if input_length != length:
        windows = windows @ resampling_matrix(length, input_length).astype(np.float32)
    return windows


def with_median_deviation(x: np.ndarray, segment: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """(k, 2 L): each input, then it minus its segment's reference beat: the median input of
    the segment's least premature beats (previous RR over the local mean in the top quarter).

    Those are the patient's sinus beats in every one of the 44 records' parts (80-100% N), where
    the median of all beats is an S beat in record 232 (21% N) and only just an N beat in 208
    (54% N): premature S and V beats, and the beats of a run of them, come early; the beat after a
    pause or a compensatory pause comes late. No label is read."""
    deviation = np.empty_like(x)
    prematurity = rr[:, RR_FEATURES.index("pre_over_local")]
    for part in np.unique(segment):
        rows = np.flatnonzero(segment == part)
        late = prematurity[rows] >= np.quantile(prematurity[rows], REFERENCE_QUANTILE)
        deviation[rows] = x[rows] - np.median(x[rows[late]], axis=0)
    return np.concatenate([x, deviation], axis=1)


@functools.cache
def resampling_matrix(length: int, input_length: int) -> np.ndarray:
    """(length, input_length): `resample_poly(w, input_length, length, padtype="line")` of every
    row w of a window matrix, as one matrix product (linear in w; 7x faster than calling it,
    and twice as fast again in float32, 1e-6 from float64 on these inputs)."""
    identity = np.eye(length)
    return sps.resample_poly(identity, input_length, length, axis=0, padtype="line").T.copy()


def rr_features(
    samples: np.ndarray,
    segment: np.ndarray,
    fs: float,
    local_beats: int,
    variability: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """RR features (n, 5) in seconds and ratios, and which beats have both neighbours; with
    `variability` a sixth column, the local intervals' coefficient of variation (std / mean).

    Intervals never cross a segment edge. The local mean is causal: the mean of the beat's own
    previous interval and up to `local_beats - 1` before it, so no feature of a beat in the first
    segment depends on the second. Beats without a neighbour in their segment get NaN."""
    n = samples.size
    if n == 0:
        return np.empty((0, len(RR_FEATURES) + variability)), np.empty(0, dtype=bool)
    index = np.arange(n)
    starts_segment = np.r_[True, segment[1:] != segment[:-1]]
    ends_segment = np.r_[segment[1:] != segment[:-1], True]
    first = np.maximum.accumulate(np.where(starts_segment, index, 0))
    intervals = np.diff(samples) / fs  # intervals[j]: beat j to beat j + 1
    pre = np.where(starts_segment, np.nan, np.r_[np.nan, intervals])
    post = np.where(ends_segment, np.nan, np.r_[intervals, np.nan])
    low = np.maximum(first, index - local_beats)
    count = index - low
    with np.errstate(invalid="ignore", divide="ignore"):
        local = _window_mean(intervals, low, index, count)
        columns = [pre, post, local, pre / local, post / local]
        if variability:
            spread = _window_mean(intervals**2, low, index, count) - local**2
            columns.append(np.sqrt(np.maximum(spread, 0.0)) / local)
    return np.stack(columns, axis=1), ~(starts_segment | ends_segment)


def _window_mean(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Mean of values[low:high] per row from one cumulative sum (NaN where the window is empty)."""
    cumulative = np.r_[0.0, np.cumsum(values)]
    mean = (cumulative[high] - cumulative[low]) / count
    mean[count == 0] = np.nan
    return mean
