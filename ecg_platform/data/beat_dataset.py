"""Cached per-record beats, and a beat protocol's splits and common set as trainer-ready arrays.

Cache entries live at `<cache>/beats-<extraction hash>/NNN.npz`, keyed like the window cache
(format version, extraction hash, SHA-256 of the record's files); both protocols share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_platform.data import cache
from ecg_platform.data.beat_config import BeatConfig, BeatExtraction
from ecg_platform.data.beats import RecordBeats, extract_beats
from ecg_platform.data.dataset import LOADER_THREADS, SplitArrays
from ecg_platform.data.labels import apply_label_set
from ecg_platform.data.mitdb import check_records, read_record, record_files
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.protocols import (
    NON_PACED,
    SPLITS,
    CommonSet,
    assign_splits,
    draw_common_set,
    patient_records,
    pool_records,
    select_patients,
)
from ecg_platform.errors import EcgPlatformError

BEATS_CACHE_VERSION = 2  # bump whenever a code change alters the extracted arrays (2: the
# median deviation's reference beat)
CACHED_FIELDS = ("x", "aami", "rr", "sample", "segment", "dropped")


@dataclass(frozen=True)
class BeatArrays:
    """Trainer input: beats with labels under the config's label set, from one or more records."""

    x: np.ndarray  # (n, input_length) float32
    y: np.ndarray  # (n,) int64 class labels (label set applied)
    rr: np.ndarray | None  # (n, config.side_features) float32 RR features, or None
    sample: np.ndarray  # (n,) int64 R-peak sample in its record
    record: np.ndarray  # (n,) str record id of each beat

    def __len__(self) -> int:
        return int(self.y.size)


@dataclass(frozen=True)
class BeatStudy:
    """Every record's beats under one extraction, with a protocol's splits and common set."""

    config: BeatConfig
    records: dict[str, RecordBeats]  # every record read
    splits: dict[str, np.ndarray]  # per protocol record: (n,) uint8 index into SPLITS
    common: CommonSet | None  # patient-specific only

    @property
    def selected(self) -> list[str]:
        """The records the protocol uses (the 44 without paced beats)."""
        return sorted(self.splits)

    def part(self, record: str, split: str) -> BeatArrays:
        """The beats of `record` in one split ("train", "val", "test" or "common")."""
        if record not in self.splits:
            raise EcgPlatformError(
                f"record {record!r} is not used by the {self.config.protocol} protocol"
            )
        return self._take(record, self.splits[record] == _split_index(split))

    def parts(self, records: Sequence[str], split: str) -> BeatArrays:
        """The beats of `records` in one split, record after record."""
        return _concat([self.part(record, split) for record in records], self.config)

    def common_part(self) -> BeatArrays:
        """The common set (empty outside the patient-specific protocol)."""
        if self.common is None:
            return _concat([], self.config)
        records = sorted(set(self.common.record.tolist()))
        return _concat([self._take(r, self.common.indices_in(r)) for r in records], self.config)

    def patient(self, record: str) -> dict[str, BeatArrays]:
        """A patient's "train" (patient-specific: the common set + its own training beats),
        "val" and "test" beats."""
        if record not in patient_records(self.config):
            raise EcgPlatformError(
                f"record {record!r} is not a {self.config.protocol} patient; choose from: "
                f"{' '.join(patient_records(self.config))}"
            )
        own_train = self.part(record, "train")
        train = _concat([self.common_part(), own_train], self.config)
        return {"train": train, "val": self.part(record, "val"), "test": self.part(record, "test")}

    def pooled(self, split: str) -> BeatArrays:
        """Pooled training ("train") or validation ("val") beats of the whole protocol: DS1
        records for inter-patient; for patient-specific the common set (train) and every
        patient's own training or validation beats. Never any test beat."""
        return self._training(split, self.selected)

    def select(self, patients: PatientSelection) -> list[str]:
        """The protocol's patients among `patients` (all of them for `all`)."""
        return select_patients(self.config, patients)

    def inputs_and_abnormal_share(self, record: str) -> tuple[int, float]:
        """The record's own beats under the protocol (the common set's excepted) and the share
        that is not N."""
        own = self.splits[record] != _split_index("common")
        labels = self.records[record].aami[own]
        return int(labels.size), float(np.mean(labels != 0)) if labels.size else 0.0

    def split_arrays(self, records: Sequence[str]) -> dict[str, SplitArrays]:
        """The training, validation and test beats of a model of `records`: one patient's own
        (`patient`), else the protocol's pool (inter-patient: DS1; patient-specific: the common
        set and these patients' training parts) tested on these patients' test parts."""
        if len(records) == 1:
            parts = self.patient(records[0])
        else:
            parts = {
                "train": self._training("train", records),
                "val": self._training("val", records),
                "test": self.parts(records, "test"),
            }
        return {name: SplitArrays(a.x, a.y, a.rr) for name, a in parts.items()}

    def _training(self, split: str, records: Sequence[str]) -> BeatArrays:
        if split not in ("train", "val"):
            raise EcgPlatformError(f"pooled data has splits train and val, not {split!r}")
        pool = pool_records(self.config) or records
        parts = [self.part(record, split) for record in pool]
        if split == "train":
            parts.insert(0, self.common_part())
        return _concat(parts, self.config)

    def _take(self, record: str, which: np.ndarray) -> BeatArrays:
        beats = self.records[record]
        return BeatArrays(
            x=beats.x[which],
            y=apply_label_set(beats.aami[which], self.config.label_set),
            rr=beats.rr[which] if self.config.rr_features else None,
            sample=beats.sample[which],
            record=np.full(beats.sample[which].size, record),
        )


def load_beat_study(data_dir: Path, config: BeatConfig, cache_dir: Path | None = None) -> BeatStudy:
    """Every record in `data_dir` extracted (cached), split by `config`'s protocol."""
    available = check_records(data_dir, NON_PACED, needed_by=f"the {config.protocol} protocol")
    beats = load_beats(data_dir, available, config.extraction, cache_dir)
    common = draw_common_set(beats, config) if config.protocol == "patient-specific" else None
    return BeatStudy(config, beats, assign_splits(beats, config, common), common)


def load_beats(
    data_dir: Path,
    records: Sequence[str],
    extraction: BeatExtraction,
    cache_dir: Path | None = None,
) -> dict[str, RecordBeats]:
    """Beats of `records`, read and extracted by a few threads (decoding, filtering and
    resampling release the GIL), each from the cache when its key matches."""
    with ThreadPoolExecutor(max_workers=LOADER_THREADS) as pool:
        futures = {
            record: pool.submit(load_record_beats, data_dir, record, extraction, cache_dir)
            for record in records
        }
        return {record: future.result() for record, future in futures.items()}


def load_record_beats(
    data_dir: Path, record: str, extraction: BeatExtraction, cache_dir: Path | None = None
) -> RecordBeats:
    """One record's beats from the cache when its key matches, else extracted and cached."""
    if cache_dir is None:
        return extract_beats(read_record(data_dir, record, extraction.channel), extraction)
    extraction_hash = extraction.hash()
    path = cache_dir / f"beats-{extraction_hash}" / f"{record}.npz"
    digest = cache.files_digest(record_files(data_dir, record))
    key = f"v{BEATS_CACHE_VERSION}-{extraction_hash}-{digest}"
    entry = cache.read_entry(path, key, CACHED_FIELDS)
    if entry is not None:
        return RecordBeats(record, **entry)
    beats = extract_beats(read_record(data_dir, record, extraction.channel), extraction)
    cache.write_entry(path, key, {field: getattr(beats, field) for field in CACHED_FIELDS})
    return beats


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise EcgPlatformError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _concat(parts: list[BeatArrays], config: BeatConfig) -> BeatArrays:
    if not parts:
        return BeatArrays(
            x=np.empty((0, config.input_length), np.float32),
            y=np.empty(0, np.int64),
            rr=np.empty((0, config.side_features), np.float32) if config.rr_features else None,
            sample=np.empty(0, np.int64),
            record=np.empty(0, str),
        )
    return BeatArrays(
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        rr=np.concatenate([p.rr for p in parts]) if config.rr_features else None,
        sample=np.concatenate([p.sample for p in parts]),
        record=np.concatenate([p.record for p in parts]),
    )
