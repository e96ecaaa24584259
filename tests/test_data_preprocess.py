"""Steps 2-6 of the protocol, each on its own and together against a loop-by-loop reference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

from ecg_platform.data.config import ABNORMAL_SYMBOLS, DataConfig, data_config
from ecg_platform.data.mitdb import Record, read_record
from ecg_platform.data.preprocess import (
    ABNORMAL,
    DROPPED,
    NORMAL,
    bandpass,
    check_label_symbols,
    label_windows,
    make_windows,
    normalise,
    preprocess_record,
    resample_windows,
)
from ecg_platform.errors import EcgPlatformError

PAPER = data_config("paper")
FS = 360.0


def test_normalise_maps_to_unit_range_whatever_the_units(excerpt_dir: Path) -> None:
    digital = read_record(excerpt_dir, "119").signal
    scaled = normalise(digital)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(normalise((digital - 1024) / 200.0), scaled, atol=1e-12)


def _sine(hz: float, seconds: float = 60.0) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(seconds * FS)) / FS)


@pytest.mark.parametrize(
    ("hz", "passes"), [(0.05, False), (5.0, True), (15.0, True), (90.0, False)]
)
def test_bandpass_keeps_the_band_without_phase_shift(hz: float, passes: bool) -> None:
    wave = _sine(hz)
    middle = slice(wave.size // 4, 3 * wave.size // 4)
    filtered = bandpass(wave, FS, PAPER)[middle]
    if passes:
        np.testing.assert_allclose(filtered, wave[middle], atol=0.05)
    else:
        assert np.abs(filtered).max() < 0.1


def test_windows_pad_the_last_one_with_the_last_sample() -> None:
    record = np.arange(650_000, dtype=np.float64)
    windows = make_windows(record, 360)
    assert windows.shape == (1806, 360)
    np.testing.assert_array_equal(windows[:-1].ravel(), record[: 1805 * 360])
    tail = record[1805 * 360 :]
    np.testing.assert_array_equal(windows[-1, : tail.size], tail)
    assert np.all(windows[-1, tail.size :] == record[-1])
    assert make_windows(np.arange(720.0), 360).shape == (2, 360)


def test_labels_abnormal_beats_win_then_normal_else_dropped() -> None:
    samples = np.array([10, 20, 370, 400, 800, 1100, 1200, 5000])
    symbols = np.array(["N", "V", "N", "+", "~", "Q", "N", "V"])
    labels = label_windows(samples, symbols, n_windows=5, config=PAPER)
    # windows: 0 has N and V; 1 N and rhythm; 2 noise only; 3 Q then N; 4 nothing; 5000 is past
    np.testing.assert_array_equal(labels, [ABNORMAL, NORMAL, DROPPED, NORMAL, DROPPED])


@pytest.mark.parametrize("symbol", ABNORMAL_SYMBOLS)
def test_every_abnormal_symbol_marks_its_window(symbol: str) -> None:
    labels = label_windows(np.array([5, 365]), np.array(["N", symbol]), n_windows=2, config=PAPER)
    np.testing.assert_array_equal(labels, [NORMAL, ABNORMAL])


def test_resample_is_exact_for_a_band_limited_window() -> None:
    grid = np.arange(360) / 360
    windows = np.stack([np.sin(2 * np.pi * 3 * grid), np.cos(2 * np.pi * 7 * grid)])
    resampled = resample_windows(windows, 128)
    coarse = np.arange(128) / 128
    expected = np.stack([np.sin(2 * np.pi * 3 * coarse), np.cos(2 * np.pi * 7 * coarse)])
    np.testing.assert_allclose(resampled, expected, atol=1e-10)


def test_label_symbols_must_be_wfdb_codes_in_one_class_only() -> None:
    check_label_symbols(PAPER)
    with pytest.raises(EcgPlatformError, match=r"unknown annotation symbol.*Z"):
        check_label_symbols(replace(PAPER, abnormal_symbols=("V", "Z")))
    with pytest.raises(EcgPlatformError, match="both normal and abnormal"):
        check_label_symbols(replace(PAPER, normal_symbols=("N", "V")))


def _study_style_reference(record: Record, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The study's procedure written plainly: one window at a time, scipy called directly."""
    b, a = sps.butter(3, [0.4, 30], btype="bandpass", fs=360)
    scaled = (record.signal - record.signal.min()) / (record.signal.max() - record.signal.min())
    filtered = sps.filtfilt(b, a, scaled)
    xs, ys = [], []
    for start in range(0, filtered.size, 360):
        window = filtered[start : start + 360]
        window = np.concatenate([window, np.full(360 - window.size, filtered[-1])])
        inside = (record.annotation_samples >= start) & (record.annotation_samples < start + 360)
        symbols = set(record.annotation_symbols[inside])
        if symbols & set(config.abnormal_symbols):
            ys.append(1)
        elif "N" in symbols:
            ys.append(0)
        else:
            continue
        xs.append(sps.resample(window, 128))
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("record", ["119", "208"])
def test_vectorised_steps_equal_the_plain_reference(excerpt_dir: Path, record: str) -> None:
    loaded = read_record(excerpt_dir, record)
    x, y = preprocess_record(loaded, PAPER)
    expected_x, expected_y = _study_style_reference(loaded, PAPER)
    assert x.dtype == np.float32 and y.dtype == np.uint8
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_allclose(x, expected_x, rtol=0, atol=1e-6)
