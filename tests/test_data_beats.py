"""Beat extraction: AAMI labels, window centring, causal RR features, edges, segments, cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy import signal as sps
from wfdb.io.annotation import ann_label_table

from ecg_platform.data.beat_config import BeatConfig, BeatExtraction, beat_config
from ecg_platform.data.beat_dataset import load_beats
from ecg_platform.data.beats import RR_FEATURES, extract_beats, resampling_matrix
from ecg_platform.data.labels import (
    AAMI_CLASSES,
    AAMI_SYMBOLS,
    NOT_A_BEAT,
    aami_classes,
    apply_label_set,
)
from ecg_platform.data.mitdb import Record, read_record
from ecg_platform.errors import EcgPlatformError

DEFAULT = BeatExtraction()
FIVE_MINUTES = 108_000


def _reference_filtered(data_dir: Path, record: str, start: int, end: int) -> np.ndarray:
    """Channel 0 of samples [start, end) read by wfdb, min-max scaled, filtfilt-ed (0.4-30 Hz),
    divided by its 1st-99th percentile range."""
    digital = wfdb.rdrecord(str(data_dir / record), channels=[0], physical=False).d_signal[:, 0]
    part = digital[start:end].astype(np.float64)
    scaled = (part - part.min()) / (part.max() - part.min())
    b, a = sps.butter(3, [0.4, 30.0], btype="bandpass", fs=360.0)
    filtered = sps.filtfilt(b, a, scaled)
    low, high = np.percentile(filtered, [1, 99])
    return filtered / (high - low)


def test_aami_classes_follow_ec57_and_skip_non_beats() -> None:
    assert AAMI_SYMBOLS == {
        "N": ("N", "L", "R", "e", "j"),
        "S": ("A", "a", "J", "S"),
        "V": ("V", "E"),
        "F": ("F",),
        "Q": ("/", "f", "Q"),
    }
    every_symbol = [symbol for symbols in AAMI_SYMBOLS.values() for symbol in symbols]
    assert set(every_symbol) <= set(ann_label_table["symbol"])
    assert len(every_symbol) == len(set(every_symbol)) == 15
    symbols = np.array(["N", "A", "V", "F", "/", "+", "~", "|", "!", "x", '"', "[", "]", "Q"])
    expected = [0, 1, 2, 3, 4] + [NOT_A_BEAT] * 8 + [4]
    np.testing.assert_array_equal(aami_classes(symbols), expected)


def test_binary_label_set_is_n_against_the_rest() -> None:
    aami = np.arange(len(AAMI_CLASSES))
    np.testing.assert_array_equal(apply_label_set(aami, "binary"), [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(apply_label_set(aami, "aami"), aami)
    assert apply_label_set(aami, "binary").dtype == np.int64


@pytest.mark.parametrize(
    "make",
    [
        lambda: BeatConfig(label_set="aami5"),
        lambda: BeatConfig(protocol="intra"),
        lambda: BeatConfig(val_fraction=1.0),
        lambda: BeatConfig(protocol="inter-patient", val_records=("232",)),  # a DS2 record
        lambda: BeatExtraction(before_s=0.0),
        lambda: beat_config("paper"),
    ],
)
def test_bad_beat_settings_are_one_line_errors(make: Callable[[], object]) -> None:
    with pytest.raises(EcgPlatformError) as error:
        make()
    assert "\n" not in str(error.value)


def test_config_hash_is_stable_and_sees_every_field() -> None:
    config = beat_config("patient-specific")
    assert config.hash() == BeatConfig().hash() and len(config.hash()) == 12
    changed = dataclasses.replace(config, extraction=BeatExtraction(input_length=84))
    assert changed.hash() != config.hash()
    assert dataclasses.replace(config, rr_features=False).hash() != config.hash()
    assert beat_config("inter-patient").to_dict()["extraction"]["before_s"] == 0.9


def test_unresampled_windows_are_the_filtered_signal_around_each_r_peak(
    excerpt_dir: Path,
) -> None:
    """With input_length = window length the inputs are exact slices: the R peak at index 324."""
    extraction = BeatExtraction(input_length=486)
    beats = extract_beats(read_record(excerpt_dir, "208"), extraction)
    filtered = _reference_filtered(excerpt_dir, "208", 0, FIVE_MINUTES)
    assert extraction.r_peak_index(360.0) == 324.0
    expected = np.stack([filtered[s - 324 : s + 162] for s in beats.sample])
    np.testing.assert_allclose(beats.x, expected, rtol=0, atol=1e-6)


def test_resampled_inputs_keep_the_r_peak_at_index_162(excerpt_dir: Path) -> None:
    beats = extract_beats(read_record(excerpt_dir, "208"), DEFAULT)
    filtered = _reference_filtered(excerpt_dir, "208", 0, FIVE_MINUTES)
    assert beats.x.shape == (beats.n_beats, 243) and beats.x.dtype == np.float32
    assert DEFAULT.r_peak_index(360.0) == 162.0
    np.testing.assert_allclose(beats.x[:, 162], filtered[beats.sample], rtol=0, atol=2e-3)
    own_beat = 100  # from here on (0.34 s before the peak) the previous beat is out of view
    peak = own_beat + np.argmax(np.abs(beats.x[:, own_beat:]), axis=1)
    assert np.mean(np.abs(peak - 162) <= 2) > 0.9  # the R wave is its beat's largest deflection


def test_median_deviation_is_from_the_median_of_each_parts_least_premature_quarter(
    shared_data_dir: Path,
) -> None:
    """Record 232's beats are 79% S beats, so its median beat is an S beat; the quarter of beats
    that come latest against the local rate are its N beats (the beats after its pauses)."""
    record = read_record(shared_data_dir, "232")
    plain = extract_beats(record, DEFAULT)
    extraction = dataclasses.replace(DEFAULT, median_deviation=True)
    both = extract_beats(record, extraction)
    assert extraction.model_input_length == both.x.shape[1] == 2 * plain.x.shape[1]
    np.testing.assert_array_equal(both.x[:, :243], plain.x)
    normal = AAMI_CLASSES.index("N")
    for part in (0, 1):  # each part (first 5 minutes, the rest) against its own reference
        rows = plain.segment == part
        prematurity = plain.rr[:, RR_FEATURES.index("pre_over_local")]
        late = rows & (prematurity >= np.quantile(prematurity[rows], 0.75))
        assert (
            np.mean(plain.aami[rows] == normal) < 0.3 < 0.8 <= np.mean(plain.aami[late] == normal)
        )
        reference = np.median(plain.x[late], axis=0)
        np.testing.assert_allclose(both.x[rows, 243:], plain.x[rows] - reference, atol=1e-6)


def test_a_later_extraction_field_at_its_default_leaves_every_hash_as_it_was() -> None:
    """Caches and runs of the configs from before `median_deviation` and `rr_variability` keep
    their keys; the inter-patient preset, which turns the first on, has the key of its runs made
    with the option (docs/results.md section 6)."""
    config = beat_config("patient-specific")
    assert "median_deviation" not in config.to_dict()["extraction"]
    assert config.hash() == "897fd5d602ee" and DEFAULT.hash() == "975eeddc9111"
    inter_patient = beat_config("inter-patient")
    assert inter_patient.to_dict()["extraction"]["median_deviation"] is True
    without = dataclasses.replace(inter_patient, extraction=DEFAULT)
    assert without.hash() == "caff038df33b" and inter_patient.hash() == "8aa744172f50"
    assert inter_patient.input_length == 2 * without.input_length
    variability = dataclasses.replace(inter_patient.extraction, rr_variability=True)
    assert dataclasses.replace(inter_patient, extraction=variability).side_features == 6
    assert "rr_variability" not in inter_patient.to_dict()["extraction"]


def test_percentile_scaling_gives_a_records_training_and_test_parts_one_amplitude(
    shared_data_dir: Path,
) -> None:
    """Record 201 min-max scaled per segment: its normal beats are half as tall in the 25-minute
    test part as in the first 5 minutes (a few extreme samples set the scale); divided by the
    1st-99th percentile range, both parts agree within 10%."""
    record = read_record(shared_data_dir, "201")

    def normal_beat_heights(extraction: BeatExtraction) -> list[float]:
        beats = extract_beats(record, extraction)
        normal = beats.aami == AAMI_CLASSES.index("N")
        return [
            float(np.median(np.ptp(beats.x[normal & (beats.segment == s)], axis=1))) for s in (0, 1)
        ]

    train, test = normal_beat_heights(dataclasses.replace(DEFAULT, percentile_scale=False))
    assert test / train < 0.6
    train, test = normal_beat_heights(DEFAULT)
    assert test / train == pytest.approx(1.0, abs=0.1)


def test_resampling_matrix_is_resample_poly() -> None:
    windows = np.random.default_rng(0).standard_normal((50, 252))
    expected = sps.resample_poly(windows, 126, 252, axis=1, padtype="line")
    np.testing.assert_allclose(windows @ resampling_matrix(252, 126), expected, atol=1e-12)


def _reference_rr(samples: np.ndarray, local_beats: int, fs: float = 360.0) -> np.ndarray:
    """Plain loop over one segment's beats: NaN where a neighbour is missing."""
    rows = []
    for i in range(samples.size):
        pre = (samples[i] - samples[i - 1]) / fs if i > 0 else np.nan
        post = (samples[i + 1] - samples[i]) / fs if i + 1 < samples.size else np.nan
        previous = [
            (samples[j] - samples[j - 1]) / fs for j in range(max(1, i - local_beats + 1), i + 1)
        ]
        local = sum(previous) / len(previous) if previous else np.nan
        cv = float(np.std(previous)) / local if previous else np.nan
        rows.append([pre, post, local, pre / local, post / local, cv])
    return np.array(rows)


def test_rr_features_match_a_plain_loop_and_never_cross_the_cut(shared_data_dir: Path) -> None:
    """Record 201 (atrial fibrillation and flutter episodes, so the intervals vary): the five
    RR features, and with `rr_variability` the sixth, as a plain loop over each part computes."""
    record = read_record(shared_data_dir, "201")
    beats = extract_beats(record, dataclasses.replace(DEFAULT, rr_variability=True))
    is_beat = aami_classes(record.annotation_symbols) != NOT_A_BEAT
    samples = record.annotation_samples[is_beat]
    assert tuple(RR_FEATURES) == (
        "pre_rr_s",
        "post_rr_s",
        "local_rr_s",
        "pre_over_local",
        "post_over_local",
    )
    assert beats.rr.shape[1] == 6 and extract_beats(record, DEFAULT).rr.shape[1] == 5
    for segment, part in enumerate((samples < FIVE_MINUTES, samples >= FIVE_MINUTES)):
        reference = _reference_rr(samples[part], DEFAULT.rr_local_beats)
        kept = beats.segment == segment
        rows = np.searchsorted(samples[part], beats.sample[kept])
        np.testing.assert_allclose(beats.rr[kept], reference[rows], rtol=1e-6, atol=1e-6)
        assert np.isfinite(beats.rr[kept]).all()


def test_beats_near_an_edge_or_without_neighbours_are_dropped_and_counted(
    shared_data_dir: Path,
) -> None:
    record = read_record(shared_data_dir, "201")
    beats = extract_beats(record, DEFAULT)
    classes = aami_classes(record.annotation_symbols)
    samples, classes = record.annotation_samples[classes >= 0], classes[classes >= 0]
    expected_kept, expected_dropped = [], np.zeros((2, 5), dtype=int)
    for i, sample in enumerate(samples):
        segment = int(sample >= FIVE_MINUTES)
        start, end = (0, FIVE_MINUTES) if segment == 0 else (FIVE_MINUTES, record.signal.size)
        has_previous = i > 0 and start <= samples[i - 1]
        has_next = i + 1 < samples.size and samples[i + 1] < end
        if has_previous and has_next and start <= sample - 90 and sample + 162 <= end:
            expected_kept.append(sample)
        else:
            expected_dropped[segment, classes[i]] += 1
    np.testing.assert_array_equal(beats.sample, expected_kept)
    np.testing.assert_array_equal(beats.dropped, expected_dropped)
    assert 4 <= beats.dropped.sum() <= 8  # two per segment edge, a few more near the cut


def test_no_training_part_input_depends_on_the_test_part(shared_data_dir: Path) -> None:
    """Rewrite minutes 5-30 (signal and beats): the first five minutes' beats stay the same:
    labels, RR features and positions bit for bit, inputs to float32 rounding (1e-7 here, where
    a leak of the tripled test part would move them by whole units): all windows of a record
    are resampled by one matrix product, and numpy's OpenBLAS rounds a float32 row
    differently with the number of rows (here 6,418 of 78,732 values, on an AMD EPYC
    without AVX-512; bit for bit on the earlier machine)."""
    record = read_record(shared_data_dir, "119")
    signal = record.signal.copy()
    signal[FIVE_MINUTES:] = 3 * signal[FIVE_MINUTES:] + 400
    late = record.annotation_samples >= FIVE_MINUTES
    changed = Record(
        name=record.name,
        signal=signal,
        fs=record.fs,
        annotation_samples=np.r_[record.annotation_samples[~late], FIVE_MINUTES + 1000],
        annotation_symbols=np.append(record.annotation_symbols[~late], "V"),
    )
    original, rewritten = extract_beats(record, DEFAULT), extract_beats(changed, DEFAULT)
    first, first_again = original.segment == 0, rewritten.segment == 0
    np.testing.assert_allclose(original.x[first], rewritten.x[first_again], rtol=0, atol=1e-6)
    for field in ("aami", "rr", "sample"):
        np.testing.assert_array_equal(
            getattr(original, field)[first], getattr(rewritten, field)[first_again]
        )


def test_the_cache_returns_what_extraction_built(excerpt_dir: Path, tmp_path: Path) -> None:
    records = ["119", "233"]
    cold = load_beats(excerpt_dir, records, DEFAULT, cache_dir=tmp_path)
    entries = sorted((tmp_path / f"beats-{DEFAULT.hash()}").iterdir())
    assert [entry.name for entry in entries] == ["119.npz", "233.npz"]
    written = [entry.stat().st_mtime_ns for entry in entries]
    warm = load_beats(excerpt_dir, records, DEFAULT, cache_dir=tmp_path)
    assert [entry.stat().st_mtime_ns for entry in entries] == written  # read, not rebuilt
    direct = load_beats(excerpt_dir, records, DEFAULT, cache_dir=None)
    for record in records:
        for field in ("x", "aami", "rr", "sample", "segment", "dropped"):
            np.testing.assert_array_equal(
                getattr(warm[record], field), getattr(cold[record], field)
            )
            np.testing.assert_array_equal(
                getattr(direct[record], field), getattr(cold[record], field)
            )
    other = BeatExtraction(input_length=84)
    assert load_beats(excerpt_dir, ["119"], other, cache_dir=tmp_path)["119"].x.shape[1] == 84
    assert (tmp_path / f"beats-{other.hash()}" / "119.npz").is_file()
