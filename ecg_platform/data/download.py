"""Download the MIT-BIH Arrhythmia Database from PhysioNet with `wfdb.dl_database`, failing fast."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from ecg_platform.errors import EcgPlatformError

DATABASE = "mitdb"
DEFAULT_TIMEOUT_S = 10.0


def download_mitdb(dest: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Fetch every mitdb record into `dest`; a clear error, within `timeout_s`, when offline."""
    import wfdb
    from wfdb.io.download import config as wfdb_download_config

    url = urlsplit(wfdb_download_config.db_index_url)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    offline_hint = f"downloading needs internet access; or copy the WFDB files into {dest} yourself"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise EcgPlatformError(f"cannot reach {host}:{port} ({exc}); {offline_hint}") from exc
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # requests/urllib3 fall back to it for every connection
    try:
        wfdb.dl_database(DATABASE, str(dest))
    except Exception as exc:  # network and HTTP failures surface as several exception types
        raise EcgPlatformError(f"download from {host} failed ({exc}); {offline_hint}") from exc
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return dest
