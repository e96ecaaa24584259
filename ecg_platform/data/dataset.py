"""Steps 7-8 of the protocol (patient selection, per-patient splits) and the cached study arrays.

Cache hits need only numpy: scipy, scikit-learn and wfdb are imported when a record is built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecg_platform.data import cache
from ecg_platform.data.config import DataConfig
from ecg_platform.data.mitdb import check_records, list_records, read_record, record_files
from ecg_platform.data.patients import PatientSelection
from ecg_platform.errors import EcgPlatformError

if TYPE_CHECKING:
    from tqdm import tqdm

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1  # bump whenever a code change alters the preprocessed arrays
CACHED_FIELDS = ("x", "y", "split")
LOADER_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class PatientArrays:
    """One patient's preprocessed windows, labels and fixed split assignment."""

    record: str
    x: np.ndarray  # (n, resample_length) float32, preprocessed windows
    y: np.ndarray  # (n,) uint8, 1 = abnormal
    split: np.ndarray  # (n,) uint8 index into SPLITS

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one split: "train", "val" or "test"."""
        if split not in SPLITS:
            raise EcgPlatformError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        mask = self.split == SPLITS.index(split)
        return self.x[mask], self.y[mask]

    @property
    def n_windows(self) -> int:
        """Kept windows."""
        return int(self.y.size)

    @property
    def n_abnormal(self) -> int:
        """Windows labelled abnormal."""
        return int(np.count_nonzero(self.y))

    @property
    def n_normal(self) -> int:
        """Windows labelled normal."""
        return self.n_windows - self.n_abnormal

    @property
    def abnormal_share(self) -> float:
        """Fraction of kept windows that are abnormal (0 when none are kept)."""
        return self.n_abnormal / self.n_windows if self.n_windows else 0.0


@dataclass(frozen=True)
class SplitArrays:
    """One split as the trainer takes it, from either protocol family: inputs (n, L), class
    labels (n,) and optional per-input side features (n, E)."""

    x: np.ndarray
    y: np.ndarray
    features: np.ndarray | None = None


def pooled_splits(patients: Sequence[PatientArrays]) -> dict[str, SplitArrays]:
    """Each split ("train", "val", "test") of the given patients, pooled in the given order."""
    if not patients:
        raise EcgPlatformError("no patients given: choose at least one record")
    pooled = {}
    for name in SPLITS:
        parts = [patient.part(name) for patient in patients]
        x = np.concatenate([windows for windows, _ in parts])
        pooled[name] = SplitArrays(x, np.concatenate([labels for _, labels in parts]))
    return pooled


@dataclass(frozen=True)
class StudyData:
    """Every patient read under one data config, and those that pass selection."""

    config: DataConfig
    patients: dict[str, PatientArrays]  # every record read, selected or not
    selected: list[str]  # records passing step 7, sorted

    def select(self, patients: PatientSelection) -> list[str]:
        """The record ids of `patients`; each must be a selected record."""
        if patients.ids is None:
            return list(self.selected)
        invalid = [record for record in patients.ids if record not in self.selected]
        if invalid:
            share = self.config.min_abnormal_share
            raise EcgPlatformError(
                f"record(s) {' '.join(invalid)} not among the selected records (both classes, at "
                f"least {share:.1%} abnormal windows); choose from: "
                f"{' '.join(self.selected) or '(none)'} among those read (or 'all'; "
                "`ecg-platform data summary` lists every record)"
            )
        return list(patients.ids)

    def inputs_and_abnormal_share(self, record: str) -> tuple[int, float]:
        """The record's kept windows and the share labelled abnormal."""
        patient = self.patients[record]
        return patient.n_windows, patient.abnormal_share

    def split_arrays(self, records: Sequence[str]) -> dict[str, SplitArrays]:
        """The training, validation and test windows of a model of `records` (pooled)."""
        return pooled_splits([self.patients[record] for record in records])


def passes_selection(y: np.ndarray, min_abnormal_share: float) -> bool:
    """Step 7: both classes present and abnormal windows at least `min_abnormal_share`."""
    n_abnormal = int(np.count_nonzero(y))
    return 0 < n_abnormal < y.size and n_abnormal / y.size >= min_abnormal_share


def _stratify_by(labels: np.ndarray) -> np.ndarray | None:
    """The labels when every class has two windows or more (always true of selected records)."""
    return labels if np.bincount(labels).min() >= 2 else None


def split_windows(y: np.ndarray, config: DataConfig) -> np.ndarray:
    """Step 8: test fraction, then validation fraction of the rest, stratified, seeded (uint8)."""
    from sklearn.model_selection import train_test_split

    seed = config.split_seed
    try:
        rest, test = train_test_split(
            np.arange(y.size),
            test_size=config.test_fraction,
            stratify=_stratify_by(y),
            random_state=seed,
        )
        train, val = train_test_split(
            rest, test_size=config.val_fraction, stratify=_stratify_by(y[rest]), random_state=seed
        )
    except ValueError as exc:
        raise EcgPlatformError(f"cannot split {y.size} windows: {exc}") from exc
    split = np.empty(y.size, dtype=np.uint8)
    for index, name in ((train, "train"), (val, "val"), (test, "test")):
        split[index] = SPLITS.index(name)
    return split


def build_patient(data_dir: Path, record: str, config: DataConfig) -> PatientArrays:
    """Read one record and run steps 2-6 and 8 on it (no cache)."""
    from ecg_platform.data.preprocess import check_label_symbols, preprocess_record

    check_label_symbols(config)
    x, y = preprocess_record(read_record(data_dir, record, config.channel), config)
    if y.size == 0:
        raise EcgPlatformError(
            f"record {record} in {data_dir}: no window holds a beat annotation (is its .atr empty?)"
        )
    try:
        return PatientArrays(record, x, y, split_windows(y, config))
    except EcgPlatformError as exc:
        raise EcgPlatformError(f"record {record} in {data_dir}: {exc}") from exc


def _cache_key(data_dir: Path, record: str, config: DataConfig) -> str:
    digest = cache.files_digest(record_files(data_dir, record))
    return f"v{CACHE_VERSION}-{config.hash()}-{digest}"


def load_patient(
    data_dir: Path, record: str, config: DataConfig, cache_dir: Path | None = None
) -> PatientArrays:
    """One patient's arrays from the cache when its key matches, else built and cached."""
    if cache_dir is None:
        return build_patient(data_dir, record, config)
    path = cache_dir / f"windows-{config.hash()}" / f"{record}.npz"
    key = _cache_key(data_dir, record, config)
    entry = cache.read_entry(path, key, CACHED_FIELDS)
    if entry is not None:
        return PatientArrays(record, **entry)
    patient = build_patient(data_dir, record, config)
    cache.write_entry(path, key, {field: getattr(patient, field) for field in CACHED_FIELDS})
    return patient


def _progress(total: int, enabled: bool) -> tqdm:
    from tqdm import tqdm

    disable = not (enabled and sys.stderr.isatty())
    return tqdm(total=total, desc="preprocessing records", unit="record", disable=disable)


def load_study(
    data_dir: Path,
    config: DataConfig,
    records: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> StudyData:
    """Every requested record (default: all in `data_dir`) preprocessed, selected and split.

    Records are loaded by a few threads (file decoding, filtering and FFTs release the GIL)."""
    if records is None:
        names = list_records(data_dir)
    else:
        check_records(data_dir, records)
        names = list(records)
    patients: dict[str, PatientArrays] = {}
    pool = ThreadPoolExecutor(max_workers=LOADER_THREADS)
    try:
        futures = [pool.submit(load_patient, data_dir, r, config, cache_dir) for r in names]
        with _progress(len(names), progress) as bar:
            for record, future in zip(names, futures, strict=True):
                patients[record] = future.result()
                bar.update()
    finally:
        pool.shutdown(cancel_futures=True)
    selected = sorted(
        record
        for record, patient in patients.items()
        if passes_selection(patient.y, config.min_abnormal_share)
    )
    return StudyData(config, patients, selected)
