"""The tracking store's check at the edge: one line within seconds, and a safe first migration."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.store import prepare_store

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST_USE = """
import sys
import mlflow
from ecg_platform.tracking.store import prepare_store
uri = prepare_store(sys.argv[1])
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(f"experiment-{sys.argv[2]}")
"""


def test_six_processes_first_using_a_new_sqlite_store_all_succeed(
    tmp_path: Path, python_at_once
) -> None:
    uri = f"sqlite:///{tmp_path}/fresh.db"
    results = python_at_once(FIRST_USE, [[uri, str(index)] for index in range(6)], tmp_path)
    assert [code for code, _ in results] == [0] * 6, results
    names = {experiment.name for experiment in MlflowClient(uri).search_experiments()}
    assert {f"experiment-{index}" for index in range(6)} <= names


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
