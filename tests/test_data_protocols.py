"""The beat protocols on all 48 records: published counts, common set, splits without leakage."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecg_platform.data.beat_config import beat_config
from ecg_platform.data.beat_dataset import BeatStudy, load_beat_study
from ecg_platform.data.beat_summary import beat_summary
from ecg_platform.data.labels import AAMI_CLASSES, class_counts
from ecg_platform.data.protocols import (
    COMMON_SOURCE,
    DS1,
    DS1_VALIDATION,
    DS2,
    LEAKAGE_FREE,
    NON_PACED,
    PACED,
    SPLITS,
    draw_common_set,
)
from ecg_platform.errors import EcgPlatformError

FIVE_MINUTES = 108_000
EC57 = {  # the table, written out independently of ecg_platform.data.labels
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("aAJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
# Published counts over the 44 non-paced records: annotations before sample 108,000, and after.
FIRST_FIVE_MINUTES = {"N": 15_187, "S": 279, "V": 1_109, "F": 180, "Q": 0}
REST = {"N": 74_938, "S": 2_502, "V": 5_900, "F": 623, "Q": 15}


@pytest.fixture(scope="module")
def beat_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("beat-cache")


@pytest.fixture(scope="module")
def patient_specific(shared_data_dir: Path, beat_cache: Path) -> BeatStudy:
    return load_beat_study(shared_data_dir, beat_config("patient-specific"), beat_cache)


@pytest.fixture(scope="module")
def inter_patient(shared_data_dir: Path, beat_cache: Path) -> BeatStudy:
    return load_beat_study(shared_data_dir, beat_config("inter-patient"), beat_cache)


def _keys(record: np.ndarray, sample: np.ndarray) -> set[tuple[str, int]]:
    return set(zip(record.tolist(), sample.tolist(), strict=True))


def test_record_lists(shared_data_dir: Path) -> None:
    assert len(DS1) == len(DS2) == 22 and not set(DS1) & set(DS2)
    assert sorted(NON_PACED + PACED) == (shared_data_dir / "RECORDS").read_text().split()
    assert len(COMMON_SOURCE) == 20 and all("100" <= r <= "124" for r in COMMON_SOURCE)
    assert len(LEAKAGE_FREE) == 24 and "217" not in LEAKAGE_FREE
    assert set(DS1_VALIDATION) < set(DS1)


def test_published_counts_of_the_first_five_minutes_and_the_rest(
    shared_data_dir: Path, patient_specific: BeatStudy
) -> None:
    """Annotations (read by wfdb) match the published counts; every one is kept or dropped."""
    first, rest = Counter(), Counter()
    for record in NON_PACED:
        annotation = wfdb.rdann(str(shared_data_dir / record), "atr")
        for sample, symbol in zip(annotation.sample, annotation.symbol, strict=True):
            if symbol in EC57:
                (first if sample < FIVE_MINUTES else rest)[EC57[symbol]] += 1
    assert {name: first[name] for name in AAMI_CLASSES} == FIRST_FIVE_MINUTES
    assert {name: rest[name] for name in AAMI_CLASSES} == REST
    kept = [np.zeros(5, int), np.zeros(5, int)]
    dropped = np.zeros((2, 5), int)
    for record in NON_PACED:
        beats = patient_specific.records[record]
        for segment in (0, 1):
            kept[segment] += np.bincount(beats.aami[beats.segment == segment], minlength=5)
        dropped += beats.dropped
    assert (kept[0] + dropped[0]).tolist() == list(FIRST_FIVE_MINUTES.values())
    assert (kept[1] + dropped[1]).tolist() == list(REST.values())
    assert dropped.sum() < 200  # about two per record edge and two at each cut


def test_common_set_is_75_n_s_v_and_every_f_and_q_of_records_100_to_124(
    patient_specific: BeatStudy,
) -> None:
    common = patient_specific.common_part()
    assert class_counts(common.y) == {"N": 75, "S": 75, "V": 75, "F": 13, "Q": 7}
    assert set(common.record) <= set(COMMON_SOURCE)
    in_sources = np.concatenate([patient_specific.records[r].aami for r in COMMON_SOURCE])
    assert class_counts(in_sources)["F"] == 13 and class_counts(in_sources)["Q"] == 7


def test_common_set_draw_is_seeded(patient_specific: BeatStudy) -> None:
    config = patient_specific.config
    again = draw_common_set(patient_specific.records, config)
    assert patient_specific.common is not None
    np.testing.assert_array_equal(again.record, patient_specific.common.record)
    np.testing.assert_array_equal(again.index, patient_specific.common.index)
    other = draw_common_set(patient_specific.records, dataclasses.replace(config, seed=7))
    assert _keys(other.record, other.index) != _keys(again.record, again.index)


def test_strict_common_set_comes_only_from_first_minutes(
    shared_data_dir: Path, beat_cache: Path
) -> None:
    study = load_beat_study(shared_data_dir, beat_config("patient-specific-strict"), beat_cache)
    assert study.common is not None
    for record in set(study.common.record):
        assert (study.records[record].segment[study.common.indices_in(record)] == 0).all()
    available = np.concatenate(
        [study.records[r].aami[study.records[r].segment == 0] for r in COMMON_SOURCE]
    )
    expected = {name: min(75, count) for name, count in class_counts(available).items()}
    assert class_counts(study.common_part().y) == expected


def test_patient_specific_test_beats_are_never_training_data(patient_specific: BeatStudy) -> None:
    test, seen = set(), set()
    for record in patient_specific.selected:
        beats, split = patient_specific.records[record], patient_specific.splits[record]
        assert not (split[beats.segment == 1] < SPLITS.index("test")).any()  # rest: test/common
        assert not (split[beats.segment == 0] == SPLITS.index("test")).any()
        part = patient_specific.part(record, "test")
        test |= _keys(part.record, part.sample)
        for name in ("train", "val"):
            part = patient_specific.part(record, name)
            seen |= _keys(part.record, part.sample)
    common = patient_specific.common_part()
    seen |= _keys(common.record, common.sample)
    assert test and not test & seen
    parts = [patient_specific.part(r, name) for r in NON_PACED for name in ("train", "val")]
    assert len(seen) == len(common) + sum(len(part) for part in parts)  # no beat counted twice


def test_patient_training_data_is_the_common_set_plus_its_first_minutes(
    patient_specific: BeatStudy,
) -> None:
    data = patient_specific.patient("213")
    own = patient_specific.part("213", "train")
    assert len(data["train"]) == len(patient_specific.common_part()) + len(own)
    assert set(data["val"].record) == set(data["test"].record) == {"213"}
    assert data["train"].rr.shape == (len(data["train"]), 5)  # the presets give RR features
    beats = patient_specific.records["213"]
    first = beats.aami[beats.segment == 0]
    share = class_counts(data["val"].y)["N"] / class_counts(first)["N"]
    assert share == pytest.approx(0.2, abs=0.01)
    with pytest.raises(EcgPlatformError, match="not a patient-specific patient"):
        patient_specific.patient("102")


def test_inter_patient_trains_on_ds1_validates_on_whole_ds1_records(
    inter_patient: BeatStudy,
) -> None:
    train, val = inter_patient.pooled("train"), inter_patient.pooled("val")
    assert set(train.record) == set(DS1) - set(DS1_VALIDATION)
    assert set(val.record) == set(DS1_VALIDATION)
    for record in DS1_VALIDATION:
        assert len(inter_patient.part(record, "val")) == inter_patient.records[record].n_beats
    pooled = _keys(train.record, train.sample) | _keys(val.record, val.sample)
    for record in DS2:
        assert not set(inter_patient.part(record, "test").record) & set(DS1)
        every = inter_patient.records[record]
        assert not _keys(np.full(every.n_beats, record), every.sample) & pooled
    with pytest.raises(EcgPlatformError):
        inter_patient.pooled("test")


def test_ds2_adaptation_uses_first_minutes_and_tests_on_the_rest(inter_patient: BeatStudy) -> None:
    for record in DS2:
        beats, split = inter_patient.records[record], inter_patient.splits[record]
        assert (split[beats.segment == 1] == SPLITS.index("test")).all()
        assert np.isin(
            split[beats.segment == 0], [SPLITS.index("train"), SPLITS.index("val")]
        ).all()
    config = dataclasses.replace(inter_patient.config, label_set="binary", rr_features=True)
    data = dataclasses.replace(inter_patient, config=config).patient("232")
    assert set(np.unique(data["train"].y)) == {0, 1}
    assert data["train"].rr is not None and data["train"].rr.shape == (len(data["train"]), 5)


def test_summary_counts_every_split_and_the_common_set(patient_specific: BeatStudy) -> None:
    summary = beat_summary(patient_specific)
    rows = {row["record"]: row for row in summary["records"]}
    assert len(rows) == 48 and not any(rows[r]["selected"] for r in PACED)
    assert summary["common"] == {"N": 75, "S": 75, "V": 75, "F": 13, "Q": 7}
    row = rows["208"]
    assert set(row) == {"record", "selected", "train", "val", "test", "common", "dropped"}
    assert row["test"] == class_counts(patient_specific.part("208", "test").y)
    totals = summary["totals"]
    assert totals["all"]["records"] == 44 and totals["records_200_234"]["records"] == 24
    assert totals["records_200_234"]["common"] == dict.fromkeys(AAMI_CLASSES, 0)
    assert totals["pool"]["records"] == 0 and totals["patients"] == totals["all"]
    for part in ("train", "val", "test", "common"):
        assert totals["all"][part] == {
            name: sum(rows[r][part][name] for r in NON_PACED) for name in AAMI_CLASSES
        }


def test_inter_patient_summary_separates_ds1_from_ds2(inter_patient: BeatStudy) -> None:
    totals = beat_summary(inter_patient)["totals"]
    assert totals["pool"]["records"] == totals["patients"]["records"] == 22
    assert totals["pool"]["test"] == dict.fromkeys(AAMI_CLASSES, 0)
    ds1_val = [inter_patient.records[r].aami for r in DS1_VALIDATION]
    assert totals["pool"]["val"] == class_counts(np.concatenate(ds1_val))
    assert totals["patients"]["test"] == class_counts(
        np.concatenate([inter_patient.part(r, "test").y for r in DS2])
    )


def test_a_protocol_needs_all_its_records(excerpt_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        EcgPlatformError, match=r"not found in .* \(the inter-patient protocol needs them\)"
    ):
        load_beat_study(excerpt_dir, beat_config("inter-patient"), tmp_path)
