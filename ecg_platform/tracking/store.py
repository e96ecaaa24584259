"""The tracking store, checked and initialised once at the edge, before any data is loaded.

MLflow alone retries a dead server for minutes, hangs on a read-only working directory and lets
concurrent first uses of a new SQLite file race through its schema migration (which bricks the
file). `prepare_store` turns each of these into one line within seconds, and migrates a new
SQLite store under a file lock so that parallel commands and workers find it ready.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import requests
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.environment_variables import (
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from sqlalchemy.exc import DatabaseError

from ecg_platform.errors import EcgPlatformError

# MLflow's own list of tracking-store schemes; database schemes may carry a driver (`+psycopg`).
SUPPORTED_SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"}
)
PROBE_TIMEOUT_S = 5.0
MIGRATION_LOCK_TIMEOUT_S = 120.0
# Bounded retries for a server lost mid-run: ~15 s of back-off instead of MLflow's minutes. A
# value the user set wins.
HTTP_RETRY_DEFAULTS = {
    MLFLOW_HTTP_REQUEST_MAX_RETRIES.name: "3",
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.name: "2",
    MLFLOW_HTTP_REQUEST_TIMEOUT.name: "30",
}
_HINT = "set MLFLOW_TRACKING_URI to sqlite:///PATH, postgresql://..., or http://HOST:PORT"


def prepare_store(uri: str | None = None) -> str:
    """Check the tracking store behind `uri` (default: MLflow's current one) and make it ready;
    returns the URI. Raises a one-line EcgPlatformError for anything that would fail later."""
    uri = uri or mlflow.get_tracking_uri()
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme not in SUPPORTED_SCHEMES:
        raise EcgPlatformError(f"unsupported tracking URI {uri!r} (scheme {scheme!r}); {_HINT}")
    if scheme in ("http", "https"):
        _probe_server(uri)
        for name, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(name, value)
    elif scheme in ("sqlite", "file", ""):
        _check_writable(Path.cwd(), "the working directory (MLflow keeps artifacts in ./mlruns)")
        if scheme == "sqlite":
            _migrate_sqlite(uri)
    return uri


def _probe_server(uri: str) -> None:
    """Any HTTP answer within the timeout will do: it proves a server listens there."""
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise EcgPlatformError(
            f"no tracking server answers at {uri} within {PROBE_TIMEOUT_S:.0f} s ({reason}); "
            f"start it (README: MLflow UI and tracking servers) or {_HINT}"
        ) from None


def _sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///relative` or `sqlite:////absolute` URI."""
    return Path(uri.removeprefix("sqlite:///")).resolve()


def _check_writable(folder: Path, what: str) -> None:
    """Create and remove a file in `folder`: `os.access` says yes to root on read-only mounts."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ecg-write-check-"):
            pass
    except OSError as exc:
        raise EcgPlatformError(
            f"cannot write to {what}: {folder} ({exc.strerror}); run from a writable directory "
            f"or {_HINT}"
        ) from None


def _migrate_sqlite(uri: str) -> None:
    """Create or migrate the SQLite store while holding a lock keyed by its path, so that only
    one process runs MLflow's schema migration and the others wait for it."""
    path = _sqlite_path(uri)
    if path.parent != Path.cwd().resolve():
        _check_writable(path.parent, "the tracking store's folder")
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    lock = FileLock(Path(tempfile.gettempdir()) / f"ecg-platform-store-{key}.lock")
    try:
        with lock.acquire(timeout=MIGRATION_LOCK_TIMEOUT_S):
            MlflowClient(uri).search_experiments(max_results=1)
    except DatabaseError as exc:
        raise EcgPlatformError(
            f"{path} is not a usable MLflow SQLite store ({exc.orig}); move it away or {_HINT}"
        ) from None
    except Timeout:
        raise EcgPlatformError(
            f"another process has held the initialisation lock of {path} for over "
            f"{MIGRATION_LOCK_TIMEOUT_S:.0f} s; try again once it has finished"
        ) from None
