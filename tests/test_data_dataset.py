"""Selection, splits, the study's known numbers, and the on-disk cache."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import wfdb
from sklearn.model_selection import train_test_split

from ecg_platform.data import cache
from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import (
    CACHED_FIELDS,
    SPLITS,
    PatientArrays,
    StudyData,
    load_study,
    passes_selection,
    split_windows,
)
from ecg_platform.data.patients import PatientSelection
from ecg_platform.errors import EcgPlatformError
from ecg_platform.workflows.settings import STUDY_HYPERPARAMS

PAPER = data_config("paper")
STUDY_RECORDS = sorted(STUDY_HYPERPARAMS)  # the study's table lists exactly its 29 patients
STUDY_WINDOWS = {  # record: (kept windows, abnormal ones), of `ecg-platform data summary`
    "100": (1806, 34),
    "102": (1806, 1729),
    "104": (1793, 1679),
    "105": (1803, 41),
    "106": (1693, 469),
    "108": (1708, 23),
    "114": (1736, 54),
    "116": (1806, 108),
    "119": (1659, 444),
    "200": (1793, 830),
    "201": (1582, 315),
    "202": (1688, 67),
    "203": (1789, 363),
    "205": (1806, 60),
    "208": (1803, 1115),
    "209": (1806, 230),
    "210": (1803, 212),
    "212": (1806, 1188),
    "213": (1806, 598),
    "215": (1806, 150),
    "217": (1805, 1650),
    "219": (1718, 72),
    "220": (1805, 75),
    "221": (1758, 393),
    "222": (1775, 374),
    "223": (1806, 484),
    "228": (1750, 364),
    "231": (1518, 1205),
    "233": (1806, 806),
}


def test_the_study_keeps_exactly_its_29_records(shared_study: StudyData) -> None:
    """The folder holds all 48 records; selection keeps the study's 29 and their 51,039 windows."""
    assert len(STUDY_RECORDS) == 29 and shared_study.selected == STUDY_RECORDS
    assert len(shared_study.patients) == 48
    assert set(STUDY_RECORDS) < set(shared_study.patients)
    kept = [shared_study.patients[record] for record in STUDY_RECORDS]
    assert sum(patient.n_windows for patient in kept) == 51_039


def test_every_study_records_window_counts(shared_study: StudyData) -> None:
    """Each of the 29 records keeps exactly its windows and abnormal ones under `paper` (the
    table: `ecg-platform data summary --json` on the full database; its totals are those of
    docs/protocol.md): a change to windowing or labelling that moves one record's count fails
    here, even where the totals (51,039 windows, 15,132 abnormal) would hide it."""
    found = {
        record: (patient.n_windows, patient.n_abnormal)
        for record, patient in shared_study.patients.items()
        if record in shared_study.selected
    }
    assert found == STUDY_WINDOWS
    assert sum(windows for windows, _ in found.values()) == 51_039
    assert sum(abnormal for _, abnormal in found.values()) == 15_132


def test_known_window_counts(shared_study: StudyData) -> None:
    record_100, record_231 = shared_study.patients["100"], shared_study.patients["231"]
    assert (record_100.n_windows, record_100.n_abnormal) == (1806, 34)
    assert record_231.n_windows == 1518
    assert record_100.x.shape == (1806, 128) and record_100.x.dtype == np.float32


@pytest.mark.parametrize(
    ("y", "passes"),
    [
        ([0] * 99 + [1], True),  # 1.0% abnormal
        ([0] * 112 + [1], False),  # 0.88% abnormal: under 0.9%
        ([0] * 50, False),  # one class only
        ([1] * 50, False),
    ],
)
def test_selection_needs_both_classes_and_enough_abnormal(y: list[int], passes: bool) -> None:
    assert passes_selection(np.array(y, dtype=np.uint8), PAPER.min_abnormal_share) is passes


def test_splits_are_the_studys_stratified_two_step_split(excerpt_study: StudyData) -> None:
    patient = excerpt_study.patients["119"]
    counts = np.bincount(patient.split, minlength=3)
    assert counts.tolist() == [172, 44, 55]  # train, val, test of 271 windows
    for split in SPLITS:
        assert abs(patient.part(split)[1].mean() - patient.y.mean()) < 0.02  # stratified
    # The study called train_test_split on the windows themselves; its test set is ours.
    x_rest, x_test, y_rest, _ = train_test_split(
        patient.x, patient.y, test_size=0.2, stratify=patient.y, random_state=42
    )
    _, x_val, _, _ = train_test_split(
        x_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=42
    )

    def rows(x: np.ndarray) -> set[bytes]:
        return {row.tobytes() for row in x}

    assert rows(x_test) == rows(patient.part("test")[0])
    assert rows(x_val) == rows(patient.part("val")[0])


def test_split_seed_is_a_config_field(excerpt_study: StudyData) -> None:
    y = excerpt_study.patients["208"].y
    same = split_windows(y, PAPER)
    np.testing.assert_array_equal(same, excerpt_study.patients["208"].split)
    assert not np.array_equal(split_windows(y, replace(PAPER, split_seed=7)), same)


def test_a_one_class_record_is_still_split(excerpt_study: StudyData) -> None:
    assert np.bincount(excerpt_study.patients["222"].split).tolist() == [76, 20, 24]


def test_excerpt_study_selects_the_records_with_both_classes(excerpt_study: StudyData) -> None:
    assert excerpt_study.selected == ["119", "208", "233"]
    assert sorted(excerpt_study.patients) == ["119", "208", "222", "233"]
    assert excerpt_study.patients["222"].n_abnormal == 0


def test_patient_parts_and_counts() -> None:
    patient = PatientArrays(
        "1",
        x=np.arange(8, dtype=np.float32).reshape(4, 2),
        y=np.array([0, 1, 1, 0], dtype=np.uint8),
        split=np.array([0, 2, 0, 1], dtype=np.uint8),
    )
    x, y = patient.part("train")
    np.testing.assert_array_equal(x, [[0, 1], [4, 5]])
    np.testing.assert_array_equal(y, [0, 1])
    assert (patient.n_windows, patient.n_abnormal, patient.n_normal) == (4, 2, 2)
    assert patient.abnormal_share == 0.5
    with pytest.raises(EcgPlatformError, match="unknown split 'dev'"):
        patient.part("dev")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", ["119", "208", "233"]),
        ("208", ["208"]),
        ("233, 119", ["233", "119"]),
        ("119,,208,119", ["119", "208"]),
    ],
)
def test_select_patients(excerpt_study: StudyData, spec: str, expected: list[str]) -> None:
    assert excerpt_study.select(PatientSelection.parse(spec)) == expected


@pytest.mark.parametrize("spec", ["222", "119,999"])
def test_select_rejects_unselected_or_unknown_ids(excerpt_study: StudyData, spec: str) -> None:
    with pytest.raises(EcgPlatformError, match="choose from: 119 208 233"):
        excerpt_study.select(PatientSelection.parse(spec))


@pytest.mark.parametrize("spec", ["", " , ,"])
def test_an_empty_patient_list_is_refused_when_parsed(spec: str) -> None:
    with pytest.raises(EcgPlatformError, match="no patient given"):
        PatientSelection.parse(spec)


@pytest.fixture
def one_record(excerpt_dir: Path, tmp_path: Path, copy_record) -> Path:
    """A writable data directory holding a copy of excerpt 119."""
    return copy_record(excerpt_dir, "119", tmp_path / "data")


def _entry(cache_dir: Path, record: str = "119") -> Path:
    (entry,) = cache_dir.glob(f"windows-*/{record}.npz")
    return entry


def _load(data_dir: Path, cache_dir: Path, config=PAPER) -> PatientArrays:
    return load_study(data_dir, config, cache_dir=cache_dir, progress=False).patients["119"]


def test_a_second_load_is_a_cache_hit(one_record: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = _load(one_record, cache_dir)
    entry = _entry(cache_dir)
    written = entry.stat().st_mtime_ns
    second = _load(one_record, cache_dir)
    assert entry.stat().st_mtime_ns == written
    for field in CACHED_FIELDS:
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))
    assert not list(cache_dir.rglob("*.tmp"))


def test_a_changed_config_gets_its_own_entry(one_record: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    paper = _load(one_record, cache_dir)
    reseeded = _load(one_record, cache_dir, replace(PAPER, split_seed=7))
    assert len(list(cache_dir.glob("windows-*/119.npz"))) == 2
    np.testing.assert_array_equal(reseeded.x, paper.x)
    assert not np.array_equal(reseeded.split, paper.split)


def test_a_changed_source_file_invalidates_the_entry(one_record: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    before = _load(one_record, cache_dir)
    ann = wfdb.rdann(str(one_record / "119"), "atr")
    symbols = ["V" if symbol == "N" else symbol for symbol in ann.symbol]  # every beat abnormal
    wfdb.wrann("119", "atr", ann.sample, symbol=symbols, fs=ann.fs, write_dir=str(one_record))
    after = _load(one_record, cache_dir)
    assert before.n_abnormal < before.n_windows == after.n_abnormal
    assert len(list(cache_dir.rglob("*.npz"))) == 1


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a zip file")


def _missing_field(path: Path) -> None:
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "split"}
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _garbage, _missing_field])
def test_a_damaged_entry_is_detected_and_rebuilt(one_record: Path, tmp_path: Path, damage) -> None:
    cache_dir = tmp_path / "cache"
    good = _load(one_record, cache_dir)
    damage(_entry(cache_dir))
    rebuilt = _load(one_record, cache_dir)
    for field in CACHED_FIELDS:
        np.testing.assert_array_equal(getattr(rebuilt, field), getattr(good, field))
    entry = _entry(cache_dir)
    assert cache.read_entry(entry, _stored_key(entry), CACHED_FIELDS) is not None


def _stored_key(entry: Path) -> str:
    with np.load(entry) as archive:
        return str(archive[cache.KEY_FIELD])


def test_the_source_digest_follows_content_not_timestamps(
    one_record: Path, tmp_path: Path, copy_record
) -> None:
    files = sorted(one_record.iterdir())
    copy = copy_record(one_record, "119", tmp_path / "copy")
    assert cache.files_digest(sorted(copy.iterdir())) == cache.files_digest(files)
    with (copy / "119.hea").open("a") as header:
        header.write("# a comment\n")
    assert cache.files_digest(sorted(copy.iterdir())) != cache.files_digest(files)


def test_cache_entries_respect_the_umask(tmp_path: Path) -> None:
    """mkstemp creates 0600 files: a shared cache would be unreadable to colleagues."""
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "entry.npz"
    cache.write_entry(path, "key", {"x": np.zeros(3)})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
