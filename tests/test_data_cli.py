"""The `ecg-platform data` commands: summary, export, download."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import StudyData, load_study


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["data", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def source(excerpt_dir: Path, tmp_path: Path) -> list[str]:
    """Options pointing the data commands at the excerpts and a fresh cache."""
    return ["--data-dir", str(excerpt_dir), "--cache-dir", str(tmp_path / "cache")]


def test_summary_json(source: list[str], excerpt_study: StudyData) -> None:
    summary = json.loads(_invoke("summary", "--json", *source))
    assert summary["selected"] == ["119", "208", "233"]
    assert summary["records"][0] == {
        "record": "119",
        "windows": 271,
        "normal": 191,
        "abnormal": 80,
        "abnormal_share": round(80 / 271, 6),
        "selected": True,
    }
    assert [row["selected"] for row in summary["records"]] == [True, True, False, True]
    assert summary["total_windows"] == 271 + 300 + 300
    assert summary["total_abnormal"] == 80 + 193 + 141
    assert summary["data_config_hash"] == excerpt_study.config.hash()


def test_summary_table(source: list[str]) -> None:
    lines = _invoke("summary", *source).splitlines()
    assert lines[0].split() == ["record", "windows", "normal", "abnormal", "abn", "%", "selected"]
    assert lines[1].split() == ["119", "271", "191", "80", "29.52", "yes"]
    assert lines[3].split() == ["222", "120", "120", "0", "0.00", "no"]
    assert lines[-1].split()[:4] == ["total", "871", "457", "414"]
    assert lines[-1].endswith("3 of 4 selected")


def test_export_writes_windows_labels_records_and_splits(
    source: list[str], tmp_path: Path, excerpt_study: StudyData
) -> None:
    out = tmp_path / "windows.npz"
    assert "wrote 600 windows of 2 record(s)" in _invoke(
        "export", *source, "--out", str(out), "--records", "208,233"
    )
    with np.load(out) as exported:
        assert exported["x"].shape == (600, 128) and exported["x"].dtype == np.float32
        assert sorted(set(exported["record"])) == ["208", "233"]
        assert sorted(set(exported["split"])) == ["test", "train", "val"]
        test = (exported["record"] == "233") & (exported["split"] == "test")
        expected_x, expected_y = excerpt_study.patients["233"].part("test")
        np.testing.assert_array_equal(exported["x"][test], expected_x)
        np.testing.assert_array_equal(exported["y"][test], expected_y)
        assert json.loads(str(exported["data_config"])) == data_config("paper").to_dict()


def test_export_all_takes_the_selected_records(source: list[str], tmp_path: Path) -> None:
    out = tmp_path / "all.npz"
    _invoke("export", *source, "--out", str(out))
    with np.load(out) as exported:
        assert sorted(set(exported["record"])) == ["119", "208", "233"]


@pytest.fixture
def unreachable_physionet() -> Iterator[None]:
    """Point wfdb at a host that never resolves (RFC 2606 `.invalid`), even where online."""
    wfdb.set_db_index_url("https://physionet.invalid/files/")
    yield
    wfdb.set_db_index_url()


@pytest.mark.usefixtures("unreachable_physionet")
def test_download_fails_fast_and_clearly_when_offline(tmp_path: Path) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, ["data", "download", "--dest", str(tmp_path / "mitdb"), "--timeout", "5"]
    )
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: cannot reach physionet.invalid:443")
    assert "needs internet access" in line


def test_warm_summary_imports_neither_torch_nor_mlflow_nor_the_build_libraries(
    excerpt_dir: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    load_study(excerpt_dir, data_config("paper"), cache_dir=cache_dir, progress=False)
    script = (
        "import sys; from ecg_platform.cli import cli\n"
        f"cli(['data', 'summary', '--data-dir', {str(excerpt_dir)!r}, '--cache-dir', "
        f"{str(cache_dir)!r}], standalone_mode=False)\n"
        "heavy = ('torch', 'mlflow', 'matplotlib', 'scipy', 'sklearn', 'wfdb', 'pandas')\n"
        "print('heavy modules:', *[name for name in heavy if name in sys.modules])"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.splitlines()[-1] == "heavy modules:"
