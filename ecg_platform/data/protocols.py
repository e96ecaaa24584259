"""Record lists of the beat protocols, the patient-specific common set, and per-beat splits.

- `patient-specific` (Hu et al. 1997; Kiranyaz, Ince & Gabbouj 2016): the 44 non-paced records;
  a patient trains on the common set + its first minutes (validation: a stratified fraction of
  them) and is tested on the rest of its record.
- `inter-patient` (de Chazal et al. 2004): pool training on DS1 (validation: whole DS1 records),
  testing on DS2; DS2 patients adapt on their first minutes and are tested on the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ecg_platform.data.labels import AAMI_CLASSES
from ecg_platform.errors import EcgPlatformError

if TYPE_CHECKING:
    from ecg_platform.data.beat_config import BeatConfig
    from ecg_platform.data.beats import RecordBeats
    from ecg_platform.data.patients import PatientSelection


def _ids(text: str) -> tuple[str, ...]:
    return tuple(text.split())


PACED = _ids("102 104 107 217")
DS1 = _ids(
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230"
)
DS2 = _ids(
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234"
)
NON_PACED = tuple(sorted(DS1 + DS2))  # the 44 records both protocols use
COMMON_SOURCE = tuple(record for record in NON_PACED if record < "200")  # 100-124, 20 records
LEAKAGE_FREE = tuple(record for record in NON_PACED if record >= "200")  # 200-234, 24 records
# Whole DS1 records held out for validation: together 18% of DS1's N, 21% of its S, 16% of V.
DS1_VALIDATION = ("118", "124", "205", "223")

SPLITS = ("train", "val", "test", "common")
TRAIN, VAL, TEST, COMMON = range(len(SPLITS))


@dataclass(frozen=True)
class CommonSet:
    """The patient-specific common training beats: (record, beat index) pairs, sorted."""

    record: np.ndarray  # (n,) str record id
    index: np.ndarray  # (n,) int64 index into that record's kept beats

    def indices_in(self, record: str) -> np.ndarray:
        """The beat indices of the common set that come from `record`."""
        return self.index[self.record == record]


def pool_records(config: BeatConfig) -> tuple[str, ...]:
    """Records whose beats train the pooled (pre)training stage: DS1, or none for
    patient-specific (there the common set and the patients' first minutes are pooled)."""
    return DS1 if config.protocol == "inter-patient" else ()


def patient_records(config: BeatConfig) -> tuple[str, ...]:
    """Records that are patients with their own train/val/test parts."""
    return DS2 if config.protocol == "inter-patient" else NON_PACED


def select_patients(config: BeatConfig, patients: PatientSelection) -> list[str]:
    """The protocol's patients among `patients` (all of them for `all`); one line for an id
    outside them (known without reading any data, so the CLI checks it first)."""
    eligible = patient_records(config)
    if patients.ids is None:
        return list(eligible)
    invalid = [record for record in patients.ids if record not in eligible]
    if invalid:
        raise EcgPlatformError(
            f"record(s) {' '.join(invalid)} not {config.protocol} patients; "
            f"choose from: {' '.join(eligible)} (or 'all')"
        )
    return list(patients.ids)


def draw_common_set(beats: Mapping[str, RecordBeats], config: BeatConfig) -> CommonSet:
    """Seeded draw of up to `common_per_class` beats per AAMI class from records 100-124 (the
    whole records, or only their first minutes): 75 N, S, V and all 13 F and 7 Q by default."""
    missing = [record for record in COMMON_SOURCE if record not in beats]
    if missing:
        raise EcgPlatformError(f"the common set needs record(s) {' '.join(missing)}; not loaded")
    sources = [beats[record] for record in COMMON_SOURCE]
    record = np.concatenate([np.full(b.n_beats, b.record) for b in sources])
    index = np.concatenate([np.arange(b.n_beats) for b in sources])
    aami = np.concatenate([b.aami for b in sources])
    eligible = np.ones(aami.size, dtype=bool)
    if config.common_pool == "first-minutes":
        eligible = np.concatenate([b.segment == 0 for b in sources])
    rng = np.random.default_rng(config.seed)
    chosen = []
    for label in range(len(AAMI_CLASSES)):
        candidates = np.flatnonzero(eligible & (aami == label))
        size = min(config.common_per_class, candidates.size)
        chosen.append(rng.choice(candidates, size=size, replace=False))
    picked = np.sort(np.concatenate(chosen))
    return CommonSet(record=record[picked], index=index[picked])


def assign_splits(
    beats: Mapping[str, RecordBeats], config: BeatConfig, common: CommonSet | None
) -> dict[str, np.ndarray]:
    """Per protocol record, each kept beat's split (uint8 index into SPLITS).

    A patient's first segment is train/val (validation: `val_fraction` of each class, seeded),
    the rest test; pool records are train, or val when in `val_records`; beats of the common set
    are COMMON in their home record, so they are never a test beat nor counted twice."""
    splits = {}
    for record in NON_PACED:
        part = beats[record]
        if record in pool_records(config):
            whole = VAL if record in config.val_records else TRAIN
            split = np.full(part.n_beats, whole, dtype=np.uint8)
        else:
            first = part.segment == 0
            split = np.where(first, TRAIN, TEST).astype(np.uint8)
            split[validation_mask(part.aami, first, config.val_fraction, record, config.seed)] = VAL
        if common is not None:
            split[common.indices_in(record)] = COMMON
        splits[record] = split
    return splits


def validation_mask(
    aami: np.ndarray, eligible: np.ndarray, fraction: float, record: str, seed: int
) -> np.ndarray:
    """Round(`fraction` x n) of the eligible beats of each class, drawn with a per-record seed;
    a class keeps at least one beat for training."""
    rng = np.random.default_rng([seed, zlib.crc32(record.encode())])
    mask = np.zeros(aami.size, dtype=bool)
    for label in range(len(AAMI_CLASSES)):
        candidates = np.flatnonzero(eligible & (aami == label))
        size = min(round(fraction * candidates.size), max(candidates.size - 1, 0))
        mask[rng.choice(candidates, size=size, replace=False)] = True
    return mask
