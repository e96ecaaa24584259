"""Every bad input gives one actionable line: from the functions, and from the CLI (exit 1)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecg_platform.cli import cli
from ecg_platform.data.config import PRESETS, data_config
from ecg_platform.data.dataset import load_study
from ecg_platform.data.mitdb import resolve_data_dir
from ecg_platform.errors import EcgPlatformError


@dataclass(frozen=True)
class BadInput:
    """A data directory made by `make(tmp, excerpts)`, the command options, the expected error."""

    make: Callable[[Path, Path], Path]
    message: str
    preset: str = "paper"
    records: list[str] = field(default_factory=list)


def _copy(excerpts: Path, dest: Path, suffixes: tuple[str, ...]) -> Path:
    dest.mkdir()
    for suffix in suffixes:
        (dest / f"119{suffix}").write_bytes((excerpts / f"119{suffix}").read_bytes())
    return dest


def _without_records(tmp: Path, _excerpts: Path) -> Path:
    (tmp / "data").mkdir()
    (tmp / "data" / "notes.txt").write_text("no records here")
    return tmp / "data"


def _truncated_dat(tmp: Path, excerpts: Path) -> Path:
    data_dir = _copy(excerpts, tmp / "data", (".hea", ".dat", ".atr"))
    dat = data_dir / "119.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    return data_dir


def _unparsable_header(tmp: Path, excerpts: Path) -> Path:
    data_dir = _copy(excerpts, tmp / "data", (".dat", ".atr"))
    (data_dir / "119.hea").write_text("this is not a WFDB header\n")
    return data_dir


def _empty_annotations(tmp: Path, excerpts: Path) -> Path:
    data_dir = _copy(excerpts, tmp / "data", (".hea", ".dat"))
    (data_dir / "119.atr").write_bytes(b"\x00\x00")  # the end-of-file marker alone
    return data_dir


CASES = {
    "missing directory": BadInput(lambda tmp, _: tmp / "absent", "absent does not exist"),
    "directory without records": BadInput(_without_records, "no MIT-BIH records in"),
    "unknown record": BadInput(  # the loader lists the directory's ids, `export` the selected
        lambda _, excerpts: excerpts, r"record\(s\) 999 not .*: 119 208", records=["999"]
    ),
    "header without .dat": BadInput(
        lambda tmp, excerpts: _copy(excerpts, tmp / "data", (".hea", ".atr")),
        r"refers to .*119\.dat, which is missing",
    ),
    "truncated .dat": BadInput(_truncated_dat, r"119\.dat.*truncated"),
    "missing .atr": BadInput(
        lambda tmp, excerpts: _copy(excerpts, tmp / "data", (".hea", ".dat")),
        r"annotation file .*119\.atr is missing",
    ),
    "empty .atr": BadInput(_empty_annotations, r"record 119 in .*: no window holds a beat"),
    "unparsable header": BadInput(_unparsable_header, r"cannot parse header .*119\.hea"),
    "unknown preset": BadInput(
        lambda _, excerpts: excerpts, "unknown preset 'nope'; known presets: .*paper", "nope"
    ),
    "unknown label symbol": BadInput(
        lambda _, excerpts: excerpts, "unknown annotation symbol.* Z", "bad-symbols"
    ),
}


@pytest.fixture(autouse=True)
def _bad_symbol_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset whose label map has a symbol WFDB does not know."""
    bad = replace(data_config("paper"), preset="bad-symbols", abnormal_symbols=("V", "Z"))
    monkeypatch.setitem(PRESETS, "bad-symbols", bad)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_function_raises_one_line_and_caches_nothing(
    case: BadInput, tmp_path: Path, excerpt_dir: Path
) -> None:
    data_dir, cache_dir = case.make(tmp_path, excerpt_dir), tmp_path / "cache"
    with pytest.raises(EcgPlatformError, match=case.message) as error:
        load_study(
            resolve_data_dir(data_dir),
            data_config(case.preset),
            records=case.records or None,
            cache_dir=cache_dir,
            progress=False,
        )
    assert "\n" not in str(error.value)
    assert not list(cache_dir.rglob("*.npz"))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cli_prints_one_error_line_and_exits_1(
    case: BadInput, tmp_path: Path, excerpt_dir: Path
) -> None:
    data_dir = case.make(tmp_path, excerpt_dir)
    options = ["--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache")]
    options += ["--preset", case.preset]
    if case.records:
        command = ["data", "export", *options, "--out", str(tmp_path / "out.npz")]
        command += ["--records", ",".join(case.records)]
    else:
        command = ["data", "summary", *options]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out.npz").exists()
    assert re.search(case.message, lines[0])
