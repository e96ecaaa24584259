"""The Kaggle "mitbih_database" layout the study used: `NNN.csv` plus `NNNannotations.txt`.

`NNN.csv` has a header `'sample #','MLII','V5'` (signal names vary by record) and one row of digital
samples per time step; `NNNannotations.txt` is `rdann -v` text output with the columns
`Time  Sample #  Type  Sub Chan  Num  Aux`. All records are sampled at 360 Hz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_platform.errors import EcgPlatformError

SAMPLING_HZ = 360.0
ANNOTATION_SUFFIX = "annotations.txt"


def signal_path(data_dir: Path, record: str) -> Path:
    """The CSV file of a record's signals."""
    return data_dir / f"{record}.csv"


def annotation_path(data_dir: Path, record: str) -> Path:
    """The text file of a record's annotations."""
    return data_dir / f"{record}{ANNOTATION_SUFFIX}"


def list_records(data_dir: Path) -> list[str]:
    """Sorted ids of the records that have a CSV file (annotations are checked when read)."""
    return sorted(path.stem for path in data_dir.glob("*.csv"))


def record_files(data_dir: Path, record: str) -> list[Path]:
    """The existing files of a record."""
    paths = (signal_path(data_dir, record), annotation_path(data_dir, record))
    return [path for path in paths if path.is_file()]


def read_signal(data_dir: Path, record: str, channel: int) -> np.ndarray:
    """Signal column `channel` (0 = the first after 'sample #') as float64 digital units."""
    import pandas as pd

    path = signal_path(data_dir, record)
    with path.open() as file:
        n_signals = len(file.readline().split(",")) - 1
    if not 0 <= channel < n_signals:
        raise EcgPlatformError(
            f"{path} has {n_signals} signal column(s); channel {channel} does not exist"
        )
    try:
        column = pd.read_csv(path, usecols=[channel + 1], dtype=np.float64, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise EcgPlatformError(f"cannot parse {path}: {exc}") from exc
    signal = column.iloc[:, 0].to_numpy()
    if signal.size == 0 or np.isnan(signal).any():
        raise EcgPlatformError(f"{path} has no samples or empty cells (truncated?)")
    return signal


def read_annotations(data_dir: Path, record: str) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices (int64) and symbols (str) from `NNNannotations.txt`."""
    path = annotation_path(data_dir, record)
    if not path.is_file():
        raise EcgPlatformError(
            f"annotation file {path} is missing; the reference beat labels are needed"
        )
    samples: list[int] = []
    symbols: list[str] = []
    with path.open() as file:
        next(file, None)  # the column header
        for line_number, line in enumerate(file, start=2):
            fields = line.split()
            if not fields:
                continue
            try:
                samples.append(int(fields[1]))
                symbols.append(fields[2])
            except (IndexError, ValueError):
                raise EcgPlatformError(
                    f"cannot parse {path} line {line_number}: {line!r}"
                ) from None
    return np.asarray(samples, dtype=np.int64), np.asarray(symbols, dtype=str)
