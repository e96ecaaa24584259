"""Reading MIT-BIH records: WFDB formats 212 and 516, the Kaggle CSV layout, data location."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecg_platform.data.config import DATA_DIR_ENV, data_config
from ecg_platform.data.dataset import load_study
from ecg_platform.data.mitdb import list_records, read_record, record_files, resolve_data_dir
from ecg_platform.errors import EcgPlatformError

EXCERPT_RECORDS = ["119", "208", "222", "233"]


def test_list_records_of_both_directories(excerpt_dir: Path, shared_data_dir: Path) -> None:
    assert list_records(excerpt_dir) == EXCERPT_RECORDS
    assert list_records(shared_data_dir) == (shared_data_dir / "RECORDS").read_text().split()


def test_read_format_516_record(shared_data_dir: Path) -> None:
    record = read_record(shared_data_dir, "100")
    assert record.name == "100" and record.fs == 360.0
    assert record.signal.dtype == np.float64 and record.signal.shape == (650_000,)
    assert record.signal[0] == 995  # digital units: the header's initial value
    counts = {symbol: int(np.sum(record.annotation_symbols == symbol)) for symbol in "NAV"}
    assert counts == {"N": 2239, "A": 33, "V": 1}  # the published beat counts of record 100
    assert np.all(np.diff(record.annotation_samples) > 0)


def test_format_212_excerpt_equals_the_start_of_the_516_record(
    excerpt_dir: Path, shared_data_dir: Path
) -> None:
    excerpt, full = read_record(excerpt_dir, "119"), read_record(shared_data_dir, "119")
    n = excerpt.signal.size
    assert n == 5 * 60 * 360
    np.testing.assert_array_equal(excerpt.signal, full.signal[:n])
    inside = full.annotation_samples < n
    np.testing.assert_array_equal(excerpt.annotation_samples, full.annotation_samples[inside])
    np.testing.assert_array_equal(excerpt.annotation_symbols, full.annotation_symbols[inside])


def test_two_signal_format_212_record_reads_the_configured_channel(
    excerpt_dir: Path, tmp_path: Path, copy_record
) -> None:
    first, second = read_record(excerpt_dir, "119"), read_record(excerpt_dir, "233")
    wfdb.wrsamp(
        "119",
        fs=360,
        units=["mV", "mV"],
        sig_name=["MLII", "V5"],
        d_signal=np.column_stack([first.signal, second.signal]).astype(np.int64),
        fmt=["212", "212"],
        adc_gain=[200.0, 200.0],
        baseline=[1024, 1024],
        write_dir=str(tmp_path),
    )
    copy_record(excerpt_dir, "119", tmp_path, suffixes=(".atr",))
    np.testing.assert_array_equal(read_record(tmp_path, "119", channel=0).signal, first.signal)
    np.testing.assert_array_equal(read_record(tmp_path, "119", channel=1).signal, second.signal)
    with pytest.raises(EcgPlatformError, match="has 2 signal"):
        read_record(tmp_path, "119", channel=2)


def _write_kaggle_record(source: Path, record: str, second: str, dest: Path) -> None:
    """The Kaggle export of `record`: its signal as 'MLII' and `second`'s (a real signal of the
    same length) as the other column; annotations as `rdann -v` text."""
    signal = read_record(source, record).signal.astype(np.int64)
    other = read_record(source, second).signal.astype(np.int64)
    rows = "".join(f"{i},{a},{b}\n" for i, (a, b) in enumerate(zip(signal, other, strict=True)))
    (dest / f"{record}.csv").write_text("'sample #','MLII','V5'\n" + rows)
    ann = wfdb.rdann(str(source / record), "atr")
    lines = ["      Time   Sample #  Type  Sub Chan  Num\tAux"]
    for sample, symbol, sub, chan, num, aux in zip(
        ann.sample, ann.symbol, ann.subtype, ann.chan, ann.num, ann.aux_note, strict=True
    ):
        minutes, seconds = divmod(sample / ann.fs, 60)
        line = f"{f'{int(minutes)}:{seconds:06.3f}':>12}  {sample:7d}{symbol:>6}{sub:5d}{chan:5d}"
        line += f"{num:5d}" + (f"\t{aux.rstrip(chr(0))}" if aux else "")
        lines.append(line)
    (dest / f"{record}annotations.txt").write_text("\n".join(lines) + "\n")


def test_kaggle_layout_yields_the_same_arrays_as_wfdb(excerpt_dir: Path, tmp_path: Path) -> None:
    kaggle_dir = tmp_path / "mitbih_database"
    kaggle_dir.mkdir()
    for record, second in (("119", "233"), ("233", "208")):
        _write_kaggle_record(excerpt_dir, record, second, kaggle_dir)
    assert list_records(kaggle_dir) == ["119", "233"]
    assert [path.name for path in record_files(kaggle_dir, "119")] == [
        "119.csv",
        "119annotations.txt",
    ]
    wfdb_record, kaggle_record = read_record(excerpt_dir, "119"), read_record(kaggle_dir, "119")
    assert kaggle_record.fs == wfdb_record.fs
    np.testing.assert_array_equal(kaggle_record.signal, wfdb_record.signal)
    np.testing.assert_array_equal(kaggle_record.annotation_samples, wfdb_record.annotation_samples)
    np.testing.assert_array_equal(kaggle_record.annotation_symbols, wfdb_record.annotation_symbols)
    np.testing.assert_array_equal(
        read_record(kaggle_dir, "119", channel=1).signal, read_record(excerpt_dir, "233").signal
    )
    config = data_config("paper")
    from_kaggle = load_study(kaggle_dir, config, progress=False)
    from_wfdb = load_study(excerpt_dir, config, records=["119", "233"], progress=False)
    assert from_kaggle.selected == from_wfdb.selected == ["119", "233"]
    for record in ("119", "233"):
        for field in ("x", "y", "split"):
            np.testing.assert_array_equal(
                getattr(from_kaggle.patients[record], field),
                getattr(from_wfdb.patients[record], field),
            )


def test_kaggle_record_without_annotations_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "100.csv").write_text("'sample #','MLII','V5'\n0,995,1011\n1,995,1011\n")
    with pytest.raises(EcgPlatformError, match=r"100annotations\.txt is missing"):
        read_record(tmp_path, "100")


def test_data_dir_option_then_environment_then_defaults(
    excerpt_dir: Path, shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_dir))
    assert resolve_data_dir(excerpt_dir) == excerpt_dir
    assert resolve_data_dir() == shared_data_dir
    monkeypatch.delenv(DATA_DIR_ENV)
    repo_like = tmp_path / "repo"
    (repo_like / "data").mkdir(parents=True)
    monkeypatch.chdir(repo_like)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "mitdb").symlink_to(excerpt_dir)
    assert resolve_data_dir() == Path("../shared/data/mitdb")
    (repo_like / "data" / "mitdb").symlink_to(shared_data_dir)
    assert resolve_data_dir() == Path("data/mitdb")
