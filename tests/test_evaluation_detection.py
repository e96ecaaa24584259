"""Class metrics on detected beats as `bxb` (EC57) counts them: a hand-checked matrix of matched
pairs, missed and extra beats, its VEB/SVEB counts by bxb's formulas, and QRS counts that agree
with `wfdb.processing.compare_annotations` on a real record excerpt; detected beats on the R
peaks that the `.atr` marks (and that the beat models' windows are centred on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_platform.data.labels import annotated_beat_classes
from ecg_platform.data.qrs import annotated_beats, detect_beats, on_r_peaks
from ecg_platform.data.signal_input import read_wfdb
from ecg_platform.evaluation.aami import AAMI_CLASSES, MISSED, Counts, ectopic_counts
from ecg_platform.evaluation.detection import (
    DetectionCounts,
    detected_beat_confusion,
    detection_counts,
    matched_offsets,
    qrs_counts,
)

FS = 360.0  # the 150 ms window is 54 samples
N, S, V, F = (AAMI_CLASSES.index(name) for name in "NSVF")
NAMES = (*AAMI_CLASSES, MISSED)


def test_matched_missed_and_extra_beats_fill_bxbs_matrix() -> None:
    reference = np.array([100, 500, 900, 1300, 1700, 2100, 2500, 2900])
    reference_class = np.array([N, V, S, V, N, V, F, N])
    # 104, 510, 1250 (50 samples off), 2500 and 2903 match; 1500 and 1900 are extra;
    # the reference beats at 900 (S), 1700 (N) and 2100 (V) are missed
    detected = np.array([104, 510, 1250, 1500, 1900, 2500, 2903])
    detected_class = np.array([N, V, N, V, S, V, S])

    matrix = detected_beat_confusion(
        reference, reference_class, detected, detected_class, FS, len(AAMI_CLASSES)
    )

    expected = np.array(
        [  # n  s  v  f  q  o(missed)
            [1, 1, 0, 0, 0, 1],  # N: Nn (100), Ns (2900), No (1700)
            [0, 0, 0, 0, 0, 1],  # S: So (900)
            [1, 0, 1, 0, 0, 1],  # V: Vn (1300), Vv (500), Vo (2100)
            [0, 0, 1, 0, 0, 0],  # F: Fv (2500)
            [0, 0, 0, 0, 0, 0],  # Q
            [0, 1, 1, 0, 0, 0],  # O (extra): Os (1900), Ov (1500)
        ]
    )
    np.testing.assert_array_equal(matrix, expected)
    assert qrs_counts(matrix) == DetectionCounts(tp=5, fn=3, fp=2)
    # bxb: VFN = Vn+Vs+Vf+Vq+Vo = 2, VFP = Nv+Sv+Ov = 1, VTN = Nn+Ns+On+Os = 3 (No, So and
    # Fv count nowhere); SFN = So = 1, SFP = Ns+Vs+Fs+Os = 2, and TN as for VEB: Nn, Vn, Vv,
    # Fv, Ov (Vo and No count nowhere)
    assert ectopic_counts(matrix, NAMES) == {
        "VEB": Counts(tp=1, fp=1, fn=2, tn=3, uncounted=3),
        "SVEB": Counts(tp=0, fp=2, fn=1, tn=5, uncounted=2),
    }


def test_left_out_reference_beats_take_their_detection_with_them() -> None:
    reference = np.array([100, 500, 900, 1300])
    reference_class = np.array([N, S, V, V])
    detected = np.array([110, 495, 1500])  # 500 (a training beat) matched, 900 and 1300 missed
    detected_class = np.array([N, S, V])
    left_out = np.array([False, True, True, False])
    matrix = detected_beat_confusion(
        reference, reference_class, detected, detected_class, FS, 5, left_out
    )
    # 495 is neither an S-S pair nor an extra detection; missed 900 is not counted as missed
    assert qrs_counts(matrix) == DetectionCounts(tp=1, fn=1, fp=1)
    assert matrix[N, N] == matrix[V, 5] == matrix[5, V] == 1


def test_annotations_as_detections_give_the_plain_confusion_and_no_misses() -> None:
    reference = np.array([100, 500, 900, 1300])
    reference_class = np.array([N, S, V, F])
    predicted = np.array([N, N, V, V])
    matrix = detected_beat_confusion(reference, reference_class, reference, predicted, FS, 5)
    assert qrs_counts(matrix) == DetectionCounts(tp=4, fn=0, fp=0)
    assert matrix[S, N] == matrix[V, V] == matrix[F, V] == matrix[N, N] == 1


def test_qrs_counts_of_the_matrix_are_compare_annotations_counts(excerpt_dir: Path) -> None:
    recording = read_wfdb(excerpt_dir / "119")
    reference, classes = annotated_beat_classes(
        recording.annotation_samples, recording.annotation_symbols
    )
    detected = detect_beats(recording.signal, recording.fs, "gqrs")
    everything_normal = np.zeros(detected.size, dtype=np.int64)
    matrix = detected_beat_confusion(
        reference, classes, detected, everything_normal, recording.fs, 5
    )
    assert qrs_counts(matrix) == detection_counts(reference, detected, recording.fs)
    np.testing.assert_array_equal(
        matrix[:-1].sum(axis=1), np.bincount(classes, minlength=5)
    )  # every reference beat once
    assert matrix[:, 1:-1].sum() == 0  # nothing predicted but N (or missed)


@pytest.mark.parametrize("detector", ["gqrs", "xqrs"])
@pytest.mark.parametrize("record", ["119", "208", "233"])
def test_detected_beats_sit_on_the_annotated_r_peaks(
    excerpt_dir: Path, record: str, detector: str
) -> None:
    recording = read_wfdb(excerpt_dir / record)
    reference = annotated_beats(recording)
    detected = detect_beats(recording.signal, recording.fs, detector)
    offsets = np.abs(matched_offsets(reference, detected, recording.fs))
    # as gqrs marks them, 13-14 samples (36-39 ms) before the R peak
    assert np.median(offsets) <= 1
    assert np.percentile(offsets, 90) <= 5
    counts = detection_counts(reference, detected, recording.fs)
    assert counts.sensitivity >= 0.98
    assert counts.positive_predictivity == 1.0


def test_on_r_peaks_takes_either_sign_keeps_a_peak_once_and_stays_in_the_signal() -> None:
    signal = np.zeros(1000)
    signal[[5, 300, 700]] = [1.0, 1.2, -2.0]  # a peak 5 samples in, an upright and an inverted R
    # 15 samples early, as gqrs marks them; two detections of one beat; a search reaching
    # before the start (wfdb alone moves 10 to sample -47)
    moved = on_r_peaks(signal, FS, np.array([10, 285, 295, 685]))
    np.testing.assert_array_equal(moved, [5, 300, 700])
    assert moved.dtype == np.int64
