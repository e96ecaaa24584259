"""Find the MIT-BIH data, list its records and read one record (WFDB or the Kaggle CSV layout).

`wfdb` is imported only when a record is actually read, so listing records and loading cached
arrays stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_platform.data import kaggle
from ecg_platform.data.config import DATA_DIR_ENV, DATA_PATHS
from ecg_platform.data.download import download_mitdb
from ecg_platform.errors import EcgPlatformError

HOW_TO_GET_DATA = "get it with `ecg-platform data download` or pass --data-dir DIR"


@dataclass(frozen=True)
class Record:
    """One channel of one record with its reference annotations."""

    name: str
    signal: np.ndarray  # (n_samples,) float64, digital units as stored in the file
    fs: float
    annotation_samples: np.ndarray  # (n_annotations,) int64 sample indices
    annotation_symbols: np.ndarray  # (n_annotations,) str, e.g. "N", "V", "+"


def _wfdb_records(data_dir: Path) -> list[str]:
    return sorted(path.stem for path in data_dir.glob("*.hea"))


def is_wfdb_layout(data_dir: Path) -> bool:
    """True when the directory holds WFDB headers (otherwise the Kaggle layout is tried)."""
    return bool(_wfdb_records(data_dir))


def _find_records(data_dir: Path) -> list[str]:
    if is_wfdb_layout(data_dir):
        return _wfdb_records(data_dir)
    return kaggle.list_records(data_dir)


def list_records(data_dir: Path) -> list[str]:
    """Sorted record ids in `data_dir` (WFDB `NNN.hea` or Kaggle `NNN.csv` + annotations)."""
    if not data_dir.is_dir():
        raise EcgPlatformError(f"data directory {data_dir} does not exist; {HOW_TO_GET_DATA}")
    records = _find_records(data_dir)
    if not records:
        raise EcgPlatformError(
            f"no MIT-BIH records in {data_dir} (expected WFDB NNN.hea/.dat/.atr files or the "
            f"Kaggle layout NNN.csv + NNNannotations.txt); {HOW_TO_GET_DATA}"
        )
    return records


def check_records(data_dir: Path, names: Sequence[str], needed_by: str = "") -> list[str]:
    """The records `data_dir` holds; one line naming those of `names` it does not hold, and
    `needed_by` (who asked for them) when given."""
    available = list_records(data_dir)
    unknown = [record for record in names if record not in available]
    if unknown:
        needs = f" ({needed_by} needs them)" if needed_by else ""
        raise EcgPlatformError(
            f"record(s) {' '.join(unknown)} not found in {data_dir}{needs}; "
            f"available: {' '.join(available)}"
        )
    return available


def resolve_data_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else `ECG_DATA_DIR`, else the first default candidate holding records;
    with none anywhere, the database is fetched into the first one (a fresh clone just runs)."""
    explicit = option or os.environ.get(DATA_DIR_ENV)
    if explicit:
        data_dir = Path(explicit)
        list_records(data_dir)
        return data_dir
    for candidate in DATA_PATHS.data_dir_candidates:
        if candidate.is_dir() and _find_records(candidate):
            return candidate
    looked = " or ".join(str(path.resolve()) for path in DATA_PATHS.data_dir_candidates)
    try:
        return download_mitdb(DATA_PATHS.data_dir_candidates[0])
    except EcgPlatformError as exc:
        raise EcgPlatformError(
            f"no MIT-BIH records in {looked} (no --data-dir, {DATA_DIR_ENV} not set) and "
            f"fetching them failed: {exc}"
        ) from exc


def record_files(data_dir: Path, record: str) -> list[Path]:
    """The files a record is read from (they key its cache entry)."""
    if _has_header(data_dir, record):
        return sorted(data_dir.glob(f"{record}.*"))
    return kaggle.record_files(data_dir, record)


def read_record(data_dir: Path, record: str, channel: int = 0) -> Record:
    """Read one channel of `record` and its reference annotations, with one-line errors."""
    if _has_header(data_dir, record):
        return _read_wfdb(data_dir, record, channel)
    check_records(data_dir, [record])
    samples, symbols = kaggle.read_annotations(data_dir, record)
    return Record(
        name=record,
        signal=kaggle.read_signal(data_dir, record, channel),
        fs=kaggle.SAMPLING_HZ,
        annotation_samples=samples,
        annotation_symbols=symbols,
    )


def _has_header(data_dir: Path, record: str) -> bool:
    """A WFDB record: one stat per record, where listing the folder's headers per record
    took a tenth of a warm 48-record load (`benchmarks/bench_beats.py`)."""
    return (data_dir / f"{record}.hea").is_file()


def _read_wfdb(data_dir: Path, record: str, channel: int) -> Record:
    import wfdb

    stem = str(data_dir / record)
    header_path = f"{stem}.hea"
    try:
        header = wfdb.rdheader(stem)
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise EcgPlatformError(f"cannot parse header {header_path}: {exc}") from exc
    if not header.file_name or header.sig_len is None:
        raise EcgPlatformError(f"cannot parse header {header_path}: it describes no signal")
    if not 0 <= channel < header.n_sig:
        raise EcgPlatformError(
            f"record {record} has {header.n_sig} signal(s); channel {channel} does not exist"
        )
    signal_path = data_dir / header.file_name[channel]
    if not signal_path.is_file():
        raise EcgPlatformError(
            f"header {header_path} refers to {signal_path}, which is missing; "
            "copy the record's .dat file next to its header"
        )
    try:
        digital = wfdb.rdrecord(stem, channels=[channel], physical=False).d_signal[:, 0]
    except Exception as exc:  # truncated or corrupt signal files fail deep inside wfdb
        raise EcgPlatformError(f"cannot read {signal_path} (truncated or corrupt?): {exc}") from exc
    if digital.shape[0] != header.sig_len:
        raise EcgPlatformError(
            f"{signal_path} is truncated: {digital.shape[0]} of {header.sig_len} samples"
        )
    annotation_path = Path(f"{stem}.atr")
    if not annotation_path.is_file():
        raise EcgPlatformError(
            f"annotation file {annotation_path} is missing; the reference beat labels are needed"
        )
    try:
        annotation = wfdb.rdann(stem, "atr")
    except Exception as exc:
        raise EcgPlatformError(f"cannot read annotations {annotation_path}: {exc}") from exc
    return Record(
        name=record,
        signal=digital.astype(np.float64),
        fs=float(header.fs),
        annotation_samples=np.asarray(annotation.sample, dtype=np.int64),
        annotation_symbols=np.asarray(annotation.symbol, dtype=str),
    )
