"""Fetching MIT-BIH on a fresh machine, against a real HTTP server laid out like PhysioNet."""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ecg_platform.cli import cli
from ecg_platform.data.config import DATA_DIR_ENV
from ecg_platform.data.download import CHECKSUMS, DATABASE, PHYSIONET_URL_ENV, RECORD_SUFFIXES

EXCERPT_RECORDS = ("119", "208", "222", "233")


def _serve_like_physionet(excerpt_dir: Path, root: Path) -> Path:
    """Copy the excerpts into `root/mitdb/1.0.0` with RECORDS and SHA256SUMS.txt, as PhysioNet
    publishes them; returns the database folder."""
    database = root / DATABASE
    database.mkdir(parents=True)
    names = ["RECORDS"] + [f"{r}{suffix}" for r in EXCERPT_RECORDS for suffix in RECORD_SUFFIXES]
    for name in names:
        shutil.copyfile(excerpt_dir / name, database / name)
    sums = [f"{hashlib.sha256((database / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (database / CHECKSUMS).write_text("\n".join(sums) + "\n")
    return database


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the request log out of the test output."""


@pytest.fixture
def physionet(excerpt_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A real HTTP server on 127.0.0.1 serving the excerpts in PhysioNet's layout; the URL is
    set in $ECG_PHYSIONET_URL; yields the served database folder (to tamper with)."""
    root = tmp_path / "physionet-files"
    database = _serve_like_physionet(excerpt_dir, root)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PHYSIONET_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
        yield database
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no ECG_DATA_DIR and no ../shared beside it."""
    clone = tmp_path / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert not (tmp_path / "shared").exists()
    return clone


def _summary() -> Result:
    return CliRunner().invoke(cli, ["data", "summary", "--json"])


def test_fresh_clone_fetches_checks_and_goes_on(physionet: Path, fresh_clone: Path) -> None:
    result = _summary()
    assert result.exit_code == 0, result.output
    assert '"selected": ["119", "208", "233"]' in result.stdout
    fetched = fresh_clone / "data" / "mitdb"
    for name in ["RECORDS"] + [f"{r}{s}" for r in EXCERPT_RECORDS for s in RECORD_SUFFIXES]:
        assert (fetched / name).read_bytes() == (physionet / name).read_bytes(), name
    checked = subprocess.run(
        ["sha256sum", "--check", "--strict", CHECKSUMS], cwd=fetched, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(path.name for path in (fresh_clone / "data").iterdir()) == ["mitdb"]
    assert "fetched and checked 4 MIT-BIH records" in result.stderr


def test_tampered_file_is_one_line_error_and_leaves_no_data(
    physionet: Path, fresh_clone: Path
) -> None:
    signal = bytearray((physionet / "208.dat").read_bytes())
    signal[1000] ^= 0xFF
    (physionet / "208.dat").write_bytes(bytes(signal))
    result = _summary()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]  # after the progress lines of 119
    assert line.startswith("Error: no MIT-BIH records in ")
    assert "208.dat" in line and "fails its SHA-256 check" in line
    assert not (fresh_clone / "data" / "mitdb").exists()
    assert list((fresh_clone / "data").iterdir()) == []  # no partial folder left either


def test_offline_stops_fast_naming_where_to_copy_the_files(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(PHYSIONET_URL_ENV, f"http://127.0.0.1:{port}/")
    started = time.monotonic()
    result = _summary()
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: no MIT-BIH records in ") and "Traceback" not in line
    assert f"cannot reach 127.0.0.1:{port}" in line
    assert f"copy the MIT-BIH WFDB files (NNN.hea, NNN.dat, NNN.atr) into {fresh_clone}" in line
    assert DATA_DIR_ENV in line and "--data-dir" in line
    assert f"{fresh_clone / 'data' / 'mitdb'} or {fresh_clone.parent / 'shared' / 'data'}" in line
    assert not (fresh_clone / "data" / "mitdb").exists()


@pytest.mark.parametrize("where", ["ECG_DATA_DIR", "../shared"])
def test_nothing_is_fetched_where_data_lies(
    where: str,
    excerpt_dir: Path,
    physionet: Path,
    fresh_clone: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if where == "ECG_DATA_DIR":
        monkeypatch.setenv(DATA_DIR_ENV, str(excerpt_dir))
    else:
        (fresh_clone.parent / "shared" / "data").mkdir(parents=True)
        (fresh_clone.parent / "shared" / "data" / "mitdb").symlink_to(excerpt_dir)
    shutil.rmtree(physionet)  # a fetch would now fail: the command must not try one
    result = _summary()
    assert result.exit_code == 0, result.output
    assert '"selected": ["119", "208", "233"]' in result.stdout
    assert not (fresh_clone / "data").exists()


def test_download_command_fetches_into_dest_and_refuses_a_full_one(
    physionet: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "elsewhere" / "mitdb"
    result = CliRunner().invoke(cli, ["data", "download", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in dest.iterdir()) == sorted(
        path.name for path in physionet.iterdir()
    )
    again = CliRunner().invoke(cli, ["data", "download", "--dest", str(dest)])
    assert again.exit_code == 1
    assert again.output.strip() == (
        f"Error: {dest} is not empty; the database is fetched into a new or empty folder only "
        "(move its files away first)"
    )
