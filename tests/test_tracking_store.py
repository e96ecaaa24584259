"""The tracking store's check at the edge: one line within seconds. (Concurrent first use of a new
SQLite store: tests/test_tracking_concurrency.py and tests/test_reliability.py.)"""

from __future__ import annotations

import time

import pytest

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.store import prepare_store


def test_an_unknown_scheme_is_one_line() -> None:
    with pytest.raises(EcgPlatformError, match="unsupported tracking URI 'foo://bar'"):
        prepare_store("foo://bar")


def test_a_port_without_a_server_fails_within_seconds() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(EcgPlatformError, match=f"no tracking server answers at {uri}"):
        prepare_store(uri)
    assert time.monotonic() - started < 10


def test_a_working_directory_where_nothing_can_be_written_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/proc refuses new files even to root, like a read-only mount."""
    monkeypatch.chdir("/proc")
    with pytest.raises(EcgPlatformError, match="cannot write to the working directory"):
        prepare_store("sqlite:///mlflow.db")
