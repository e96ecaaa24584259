"""Steps 2-6 of the study protocol (docs/protocol.md): one record to labelled windows."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy import signal as sps

from ecg_platform.data.config import DataConfig
from ecg_platform.data.mitdb import Record
from ecg_platform.errors import EcgPlatformError

ABNORMAL, NORMAL, DROPPED = 1, 0, -1


class BandpassSettings(Protocol):
    """The filter fields `bandpass` reads (DataConfig and the beat presets' BeatExtraction)."""

    filter_low_hz: float
    filter_high_hz: float
    filter_order: int


def check_label_symbols(config: DataConfig) -> None:
    """Every label symbol must be a WFDB annotation code, and no symbol may be in both classes."""
    from wfdb.io.annotation import ann_label_table

    known = set(ann_label_table["symbol"])
    unknown = sorted(set(config.abnormal_symbols + config.normal_symbols) - known)
    if unknown:
        raise EcgPlatformError(
            f"unknown annotation symbol(s) {' '.join(unknown)} in the data config; "
            f"WFDB symbols are: {' '.join(sorted(known - {' '}))}"
        )
    both = sorted(set(config.abnormal_symbols) & set(config.normal_symbols))
    if both:
        raise EcgPlatformError(f"symbol(s) {' '.join(both)} are both normal and abnormal")


def normalise(signal: np.ndarray) -> np.ndarray:
    """Step 2: min-max scale the whole record to [0, 1]."""
    low = signal.min()
    return (signal - low) / (signal.max() - low)


def bandpass(signal: np.ndarray, fs: float, config: BandpassSettings) -> np.ndarray:
    """Step 3: zero-phase Butterworth band-pass (b/a form with `filtfilt`, as the study did)."""
    b, a = sps.butter(
        config.filter_order,
        [config.filter_low_hz, config.filter_high_hz],
        btype="bandpass",
        fs=fs,
    )
    return sps.filtfilt(b, a, signal)


def make_windows(signal: np.ndarray, window_length: int) -> np.ndarray:
    """Step 4: consecutive windows (n_windows, window_length); the last one padded with the last
    sample."""
    n_windows = -(-signal.shape[0] // window_length)
    padded = np.pad(signal, (0, n_windows * window_length - signal.shape[0]), mode="edge")
    return padded.reshape(n_windows, window_length)


def label_windows(
    samples: np.ndarray, symbols: np.ndarray, n_windows: int, config: DataConfig
) -> np.ndarray:
    """Step 5: per window ABNORMAL if any abnormal beat, else NORMAL if any normal, else DROPPED."""
    window = samples // config.window_length
    inside = (window >= 0) & (window < n_windows)

    def has_any(wanted: tuple[str, ...]) -> np.ndarray:
        hits = window[inside & np.isin(symbols, wanted)]
        return np.bincount(hits, minlength=n_windows) > 0

    labels = np.full(n_windows, DROPPED, dtype=np.int8)
    labels[has_any(config.normal_symbols)] = NORMAL
    labels[has_any(config.abnormal_symbols)] = ABNORMAL
    return labels


def resample_windows(windows: np.ndarray, length: int) -> np.ndarray:
    """Step 6: FFT-resample every window to `length` samples in one call."""
    return sps.resample(windows, length, axis=1)


def filtered_windows(signal: np.ndarray, fs: float, config: DataConfig) -> np.ndarray:
    """Steps 2-4: every window of a whole signal, before labelling and resampling (training and
    `predict` both start here, so a recording is preprocessed exactly as the training data)."""
    return make_windows(bandpass(normalise(signal), fs, config), config.window_length)


def preprocess_record(record: Record, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-6: the kept windows `x` (n, resample_length) float32 and labels `y` (n,) uint8."""
    windows = filtered_windows(record.signal, record.fs, config)
    labels = label_windows(
        record.annotation_samples, record.annotation_symbols, windows.shape[0], config
    )
    kept = labels != DROPPED
    x = resample_windows(windows[kept], config.resample_length).astype(np.float32)
    return x, labels[kept].astype(np.uint8)
