"""Fetch the MIT-BIH Arrhythmia Database from PhysioNet or a mirror: checked, all or nothing.

`wfdb.dl_database` and `wfdb.dl_files` ask physionet.org for the database's version whatever
wfdb's index URL says, so neither can be pointed at a mirror or a local test server. This fetches
the pinned version `mitdb/1.0.0` file by file with wfdb's own downloader (which honours the index
URL), checks every file against PhysioNet's `SHA256SUMS.txt`, and renames the folder into place
only when the whole database is there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from ecg_platform.errors import EcgPlatformError

DATABASE = "mitdb/1.0.0"  # the database's path under the index URL (its only version)
RECORD_SUFFIXES = (".hea", ".dat", ".atr")  # header, signal, reference annotations
RECORD_LIST = "RECORDS"
CHECKSUMS = "SHA256SUMS.txt"
PHYSIONET_URL_ENV = "ECG_PHYSIONET_URL"
DEFAULT_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def download_mitdb(dest: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Fetch every record into `dest` (new or empty), each file checked against the database's
    SHA-256 sums; an unreachable server fails within `timeout_s`, any failure leaves `dest`
    as it was."""
    index_url = physionet_url()
    _refuse_non_empty(dest)
    _check_reachable(index_url, dest, timeout_s)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-partial-", dir=dest.parent))
    try:
        with _wfdb_index_url(index_url):
            n_records = _fetch_checked(staging, dest)
        staging.replace(dest)  # one rename on one filesystem; an empty `dest` is replaced
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("fetched and checked %d MIT-BIH records into %s", n_records, dest)
    return dest


def physionet_url() -> str:
    """The database index URL: `$ECG_PHYSIONET_URL` (a mirror, a test server), else wfdb's."""
    from wfdb.io.download import config

    return os.environ.get(PHYSIONET_URL_ENV) or config.db_index_url


def _copy_hint(dest: Path) -> str:
    return (
        "downloading needs internet access; or copy the MIT-BIH WFDB files (NNN.hea, NNN.dat, "
        f"NNN.atr) into {dest.resolve()} yourself"
    )


def _refuse_non_empty(dest: Path) -> None:
    if dest.is_dir() and any(dest.iterdir()):
        raise EcgPlatformError(
            f"{dest} is not empty; the database is fetched into a new or empty folder only "
            "(move its files away first)"
        )


def _check_reachable(index_url: str, dest: Path, timeout_s: float) -> None:
    """One TCP connection first: offline (no DNS, no route, nothing listening) fails fast here,
    since wfdb's own requests set no timeout."""
    url = urlsplit(index_url)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise EcgPlatformError(f"cannot reach {host}:{port} ({exc}); {_copy_hint(dest)}") from exc


@contextmanager
def _wfdb_index_url(index_url: str) -> Iterator[None]:
    from wfdb.io import download

    previous = download.config.db_index_url
    download.set_db_index_url(index_url)
    try:
        yield
    finally:
        download.set_db_index_url(previous)


def _fetch_checked(staging: Path, dest: Path) -> int:
    """The record list and checksums first, then each record's files, each checked on arrival."""
    from tqdm import tqdm

    _fetch(CHECKSUMS, staging, dest)
    expected = _read_checksums(staging / CHECKSUMS)
    _fetch(RECORD_LIST, staging, dest)
    _check(staging / RECORD_LIST, expected, dest)
    records = (staging / RECORD_LIST).read_text().split()
    log.info("fetching %d MIT-BIH records from %s into %s", len(records), physionet_url(), dest)
    bar_shown = sys.stderr.isatty()
    with tqdm(records, desc="MIT-BIH", unit="record", disable=not bar_shown) as bar:
        for done, record in enumerate(bar, start=1):
            for suffix in RECORD_SUFFIXES:
                _fetch(f"{record}{suffix}", staging, dest)
                _check(staging / f"{record}{suffix}", expected, dest)
            if not bar_shown:
                log.info("fetched record %s (%d/%d)", record, done, len(records))
    return len(records)


def _fetch(name: str, staging: Path, dest: Path) -> None:
    from wfdb.io import download

    try:
        download.dl_pn_file((name, "", DATABASE, str(staging), False, False))
    except Exception as exc:  # wfdb and requests raise several types for HTTP/network failures
        reason = " ".join(str(exc).split())
        url = f"{download.config.db_index_url.rstrip('/')}/{DATABASE}/{name}"
        raise EcgPlatformError(f"cannot fetch {url} ({reason}); {_copy_hint(dest)}") from exc


def _read_checksums(path: Path) -> dict[str, str]:
    """`sha256sum` lines (`<hex digest>  <path>`, `*` before a binary-mode path) by path."""
    expected = {}
    for line in path.read_text().splitlines():
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or len(fields[0]) != 64:
            raise EcgPlatformError(f"{CHECKSUMS} from {physionet_url()} is malformed: {line!r}")
        expected[fields[1].lstrip("*")] = fields[0].lower()
    return expected


def _check(path: Path, expected: dict[str, str], dest: Path) -> None:
    """Compare a fetched file's SHA-256 with the published one; a bad file is removed."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest == expected.get(path.name):
        return
    path.unlink()
    published = expected.get(path.name, f"no sum in {CHECKSUMS}")
    raise EcgPlatformError(
        f"{path.name} from {physionet_url()} fails its SHA-256 check (published {published}, "
        f"got {digest}); the file was removed and nothing was written to {dest}"
    )
