"""A user's recording for `predict` and the served pipeline: a WFDB record, a CSV column or raw
samples at any sampling rate, checked once and brought to the rate the models were trained at.

Every refusal is one line (`EcgPlatformError`): a record that cannot be read, a rate the
band-pass cannot handle, too few samples, NaN, a flat line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ecg_platform.errors import EcgPlatformError

TRAINING_FS = 360.0  # MIT-BIH's rate: every preset's windows and beats were cut at it
MIN_FS = 100.0  # below it the 30 Hz band-pass edge and the QRS detectors lose the QRS
MAX_FS = 20_000.0
MIN_SECONDS = 2.0  # the band-pass (filtfilt) and the QRS detectors need a few seconds
WFDB_SUFFIXES = (".hea", ".dat", ".atr")


@dataclass(frozen=True)
class Recording:
    """One ECG lead in mV with its rate, where it starts in its source, and any reference beats."""

    name: str
    signal: np.ndarray  # (n,) float64 mV
    fs: float
    offset_s: float = 0.0  # time of sample 0 in the source recording (--start)
    annotation_samples: np.ndarray | None = None  # (k,) int64, relative to sample 0
    annotation_symbols: np.ndarray | None = None  # (k,) str WFDB symbols

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.signal.size / self.fs

    @property
    def has_annotations(self) -> bool:
        """Whether reference beat labels came with it (a WFDB `.atr`)."""
        return self.annotation_samples is not None


def recording_from_samples(samples: object, fs: object, name: str = "samples") -> Recording:
    """Check raw samples (mV) and their rate; one clear line for anything unusable."""
    rate = check_rate(fs)
    try:
        signal = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EcgPlatformError(f"samples must be numbers (mV): {exc}") from None
    if signal.ndim != 1:
        raise EcgPlatformError(
            f"samples must be one lead, a flat list of numbers; got shape {signal.shape}"
        )
    if signal.size < MIN_SECONDS * rate:
        raise EcgPlatformError(
            f"{signal.size} samples at {rate:g} Hz are {signal.size / rate:.2f} s; "
            f"at least {MIN_SECONDS:g} s are needed"
        )
    bad = int(np.count_nonzero(~np.isfinite(signal)))
    if bad:
        raise EcgPlatformError(f"{bad} of {signal.size} samples are NaN or infinite")
    if np.ptp(signal) == 0:
        raise EcgPlatformError("the signal is a flat line (all samples equal)")
    return Recording(name, signal, rate)


def check_rate(fs: object) -> float:
    """The sampling rate as a float in [MIN_FS, MAX_FS] Hz."""
    try:
        rate = float(np.asarray(fs, dtype=np.float64).item())
    except (TypeError, ValueError):
        rate = math.nan
    if not math.isfinite(rate):
        raise EcgPlatformError(f"the sampling rate must be one number in Hz, got {fs!r}")
    if not MIN_FS <= rate <= MAX_FS:
        raise EcgPlatformError(
            f"sampling rate {rate:g} Hz is not supported: give {MIN_FS:g} to {MAX_FS:g} Hz"
        )
    return rate


def wfdb_record(path: Path) -> Path:
    """The record `rec` that `rec`, `rec.hea` or `rec.dat` names; one line when it has no header
    (a cheap check, e.g. before a model is loaded to read it)."""
    stem = path.with_suffix("") if path.suffix in WFDB_SUFFIXES else path
    if not stem.with_suffix(".hea").is_file():
        raise EcgPlatformError(f"cannot read record {path}: no header {stem.with_suffix('.hea')}")
    return stem


def read_wfdb(path: Path, channel: int = 0, with_annotations: bool = True) -> Recording:
    """One channel of a WFDB record (`rec`, `rec.hea` or `rec.dat`) in mV, with its `.atr`
    beats when the file is there and `with_annotations`."""
    import wfdb

    stem = wfdb_record(path)
    try:
        record = wfdb.rdrecord(str(stem), channels=[channel])
    except Exception as exc:  # wfdb raises many types for missing or corrupt files
        raise EcgPlatformError(f"cannot read record {path}: {exc}") from None
    recording = recording_from_samples(record.p_signal[:, 0], record.fs, stem.name)
    annotation = stem.with_suffix(".atr")
    if not (with_annotations and annotation.is_file()):
        return recording
    try:
        reference = wfdb.rdann(str(stem), "atr")
    except Exception as exc:
        raise EcgPlatformError(f"cannot read annotations {annotation}: {exc}") from None
    return replace(
        recording,
        annotation_samples=np.asarray(reference.sample, dtype=np.int64),
        annotation_symbols=np.asarray(reference.symbol, dtype=str),
    )


def read_csv(path: Path, fs: float) -> Recording:
    """The first numeric column of a CSV file (a header line is skipped) as mV at `fs` Hz."""
    import pandas as pd

    try:
        table = pd.read_csv(path, header=None, comment="#")
    except (OSError, ValueError) as exc:
        raise EcgPlatformError(f"cannot read {path}: {exc}") from None
    column = pd.to_numeric(table.iloc[:, 0], errors="coerce")
    if column.size and np.isnan(column.iloc[0]):
        column = column.iloc[1:]  # a header line
    return recording_from_samples(column.to_numpy(), fs, path.stem)


def crop(recording: Recording, start_s: float | None, end_s: float | None) -> Recording:
    """The part from `start_s` to `end_s` (seconds into the recording), as its own recording."""
    first = round((start_s or 0.0) * recording.fs)
    last = recording.signal.size if end_s is None else round(end_s * recording.fs)
    if not 0 <= first < last <= recording.signal.size:
        raise EcgPlatformError(
            f"--start/--end must lie within the recording's {recording.duration_s:.1f} s, "
            "start before end"
        )
    cropped = recording_from_samples(recording.signal[first:last], recording.fs, recording.name)
    cropped = replace(cropped, offset_s=recording.offset_s + first / recording.fs)
    if not recording.has_annotations:
        return cropped
    inside = (recording.annotation_samples >= first) & (recording.annotation_samples < last)
    return replace(
        cropped,
        annotation_samples=recording.annotation_samples[inside] - first,
        annotation_symbols=recording.annotation_symbols[inside],
    )


def at_rate(recording: Recording, fs: float = TRAINING_FS) -> Recording:
    """The recording resampled to `fs` (polyphase, anti-aliased), annotations moved with it."""
    if recording.fs == fs:
        return recording
    signal = resample(recording.signal, recording.fs, fs)
    samples = recording.annotation_samples
    if samples is not None:
        samples = np.round(samples * fs / recording.fs).astype(np.int64)
    return replace(recording, signal=signal, fs=fs, annotation_samples=samples)


def resample(signal: np.ndarray, fs: float, to_fs: float) -> np.ndarray:
    """`signal` at `fs` brought to `to_fs` (polyphase, anti-aliased; the ratio within 1/1000)."""
    from scipy import signal as sps  # here: the CLI checks a recording before scipy loads

    ratio = Fraction(to_fs / fs).limit_denominator(1000)
    return sps.resample_poly(signal, ratio.numerator, ratio.denominator)


@dataclass(frozen=True)
class RecordingSource:
    """Where the samples come from: a WFDB record, or a CSV column with its rate."""

    record: Path | None = None
    csv: Path | None = None
    fs: float | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def name(self) -> str:
        """The recording's name, e.g. `208` (the default output folder)."""
        path = self.record or self.csv
        return path.stem if path else "recording"

    def check(self) -> None:
        """The recording is there: checked before the model is looked up and loaded."""
        if self.record is not None:
            wfdb_record(self.record)
        elif self.csv is not None and not self.csv.is_file():
            raise EcgPlatformError(f"no CSV file at {self.csv}")

    def read(self, channel: int) -> Recording:
        """The (cropped) recording; one line when it cannot be read."""
        if self.record is not None:
            recording = read_wfdb(self.record, channel)
        elif self.csv is not None and self.fs is not None:
            recording = read_csv(self.csv, self.fs)
        else:
            raise EcgPlatformError("give --record PATH, or --csv FILE with --fs HZ")
        if self.start_s is None and self.end_s is None:
            return recording
        return crop(recording, self.start_s, self.end_s)
