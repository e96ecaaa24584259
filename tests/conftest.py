"""Shared fixtures: real MIT-BIH excerpts and throwaway MLflow stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import StudyData, load_study
from ecg_platform.workflows.executor import threads_per_worker

REPO_ROOT = Path(__file__).resolve().parent.parent
EXCERPT_DIR = REPO_ROOT / "tests" / "data" / "mitdb"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mitdb"


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker, and every command it starts (they inherit OMP_NUM_THREADS), gets its
    share of the cores for torch's threads: the platform's own rule for its worker processes.
    Two workers with two threads each on two cores spin-wait on each other's busy cores: a
    21-epoch `individual` took 83 s beside another two-thread training, 22 s with one thread."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None or "OMP_NUM_THREADS" in os.environ:
        return
    threads = threads_per_worker(int(workers))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with the most `slow` tests first, in collection order otherwise: xdist hands whole
    modules to its workers in this order, so the long ones start at once and the short ones fill
    in around them, instead of one worker drawing a long module last while the other idles."""
    slow = Counter(item.module for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.module])


@pytest.fixture(autouse=True)
def _isolated_mlflow_environment() -> Iterator[None]:
    """Undo MLFLOW_* variables a test leaves behind (`mlflow.set_experiment` exports one)."""
    before = {name: value for name, value in os.environ.items() if name.startswith("MLFLOW_")}
    yield
    for name in [name for name in os.environ if name.startswith("MLFLOW_")]:
        del os.environ[name]
    os.environ.update(before)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty sqlite store: copying it saves ~2 s of schema migrations per store."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def empty_store_uri(tmp_path: Path, empty_mlflow_db: Path) -> str:
    """The URI of a migrated, empty sqlite store in tmp_path, for the commands a test starts
    (a test that polls a store the command is still creating races its migration)."""
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def mlflow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store_uri: str
) -> Iterator[str]:
    """A fresh sqlite tracking store whose artifacts stay in tmp (the working directory moves)."""
    monkeypatch.chdir(tmp_path)
    uri = empty_store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def excerpt_dir() -> Path:
    """Real MIT-BIH excerpts (format 212): 119, 208, 233 (5 min, selected), 222 (2 min, not)."""
    return EXCERPT_DIR


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """All 48 MIT-BIH records in ../shared/data/mitdb (format 516); fails loudly when absent."""
    if not any(SHARED_DATA_DIR.glob("*.hea")):
        pytest.fail(f"MIT-BIH records not found in {SHARED_DATA_DIR}; the data tests need them")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def beat_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One beat cache for the session: the beat presets extract all 48 shared records once."""
    return tmp_path_factory.mktemp("beat-cache")


@pytest.fixture(scope="session")
def excerpt_study(tmp_path_factory: pytest.TempPathFactory) -> StudyData:
    """The excerpts preprocessed with the `paper` preset (cache in a tmp dir)."""
    cache_dir = tmp_path_factory.mktemp("excerpt-cache")
    return load_study(EXCERPT_DIR, data_config("paper"), cache_dir=cache_dir, progress=False)


@pytest.fixture(scope="session")
def shared_study(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> StudyData:
    """Every shared record preprocessed with the `paper` preset (cache in a tmp dir)."""
    cache_dir = tmp_path_factory.mktemp("shared-cache")
    return load_study(shared_data_dir, data_config("paper"), cache_dir=cache_dir, progress=False)


def _copy_record(
    source: Path, record: str, dest: Path, suffixes: tuple[str, ...] = (".hea", ".dat", ".atr")
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        shutil.copyfile(source / f"{record}{suffix}", dest / f"{record}{suffix}")
    return dest


def _python_at_once(script: str, argv: list[list[str]], cwd: Path) -> list[tuple[int, str]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in argv
    ]
    outputs = [process.communicate(timeout=400)[0] for process in processes]
    return [(p.returncode, out) for p, out in zip(processes, outputs, strict=True)]


@pytest.fixture
def python_at_once() -> Callable[[str, list[list[str]], Path], list[tuple[int, str]]]:
    """`python_at_once(script, argv, cwd)` starts one real Python process per argument list at
    once and returns each one's exit code and output."""
    return _python_at_once


@pytest.fixture
def copy_record() -> Callable[..., Path]:
    """`copy_record(source, record, dest, suffixes=(".hea", ".dat", ".atr"))` copies a record's
    files into `dest` and returns `dest`."""
    return _copy_record


def _register_pretrained(data_config_hash: str, seed: int = 7) -> str:
    """A real CNN1D registered as a pretrained version (champion if its val_loss is the best so
    far) under the given data-config hash; its version. Its weights (`seed`, not 42) are not
    those of a new seed-42 model, so a finetune that skipped loading them would show."""
    import numpy as np
    import torch

    from ecg_platform.models.cnn1d import CNN1D
    from ecg_platform.tracking.model_io import log_model
    from ecg_platform.tracking.registry import promote_if_better, register_model
    from ecg_platform.tracking.runs import stage_run
    from ecg_platform.tracking.schema import TRACKING

    torch.manual_seed(seed)
    with stage_run("pretrain", "all", {"data_config_hash": data_config_hash}):
        uri = log_model(CNN1D(), np.zeros((2, 1, 128), dtype=np.float32))
    tags = {"val_loss": 0.5, "data_config_hash": data_config_hash}
    version = register_model(uri, TRACKING.pretrained_model, tags)
    promote_if_better(TRACKING.pretrained_model, version)
    return version


@pytest.fixture
def register_pretrained(mlflow_store: str) -> Callable[..., str]:
    """`register_pretrained(data_config_hash, seed=7)` registers a real CNN1D in the test's store
    as a pretrained version and returns the version."""
    return _register_pretrained


def _trained_store(folder: Path, empty_db: Path, commands: list[list[str]]) -> Path:
    """`folder` as a store holding what the CLI `commands` trained (each must succeed)."""
    from click.testing import CliRunner

    from ecg_platform.cli import cli

    shutil.copy(empty_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        results = [CliRunner().invoke(cli, args) for args in commands]
        mlflow.set_tracking_uri(None)
    for result in results:
        assert result.exit_code == 0, result.output
    return folder


def _use_copy(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of `store` as the test's tracking store and working directory."""
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    monkeypatch.chdir(copy)
    uri = f"sqlite:///{copy}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return copy


@pytest.fixture(scope="session")
def store_from_commands(empty_mlflow_db: Path) -> Callable[[Path, list[list[str]]], Path]:
    """`store_from_commands(folder, commands)` makes `folder` a store holding what the CLI
    `commands` trained (each must succeed), for a module to build once and copy per test."""
    return lambda folder, commands: _trained_store(folder, empty_mlflow_db, commands)


@pytest.fixture
def use_store_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable]:
    """`use_store_copy(store)` makes a copy of `store` this test's tracking store and working
    directory, and returns the copy."""
    yield lambda store: _use_copy(store, tmp_path, monkeypatch)
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> Path:
    """A store holding `ecg-individual-119` v1: one epoch on the 119 excerpt via the real CLI."""
    folder = tmp_path_factory.mktemp("trained-store")
    args = ["individual", "--patient", "119", "--epochs", "1", "--workers", "1"]
    args += ["--data-dir", str(EXCERPT_DIR), "--cache-dir", str(folder / "cache")]
    return _trained_store(folder, empty_mlflow_db, [args])


@pytest.fixture
def trained_model(trained_store: Path, use_store_copy: Callable[[Path], Path]) -> str:
    """A copy of `trained_store` as the tracking store (working directory: a tmp dir beside it);
    the model's URI."""
    use_store_copy(trained_store)
    return "models:/ecg-individual-119/1"


@pytest.fixture(scope="session")
def beat_trained_store(
    tmp_path_factory: pytest.TempPathFactory,
    empty_mlflow_db: Path,
    shared_data_dir: Path,
    beat_cache: Path,
) -> Path:
    """A store holding three patient-specific models of patient 119 (one epoch each, real CLI):
    `ecg-individual-119-patient-specific` (AAMI classes, RR features),
    `ecg-individual-119-patient-specific-binary-no-rr` and, with the median deviation,
    `ecg-individual-119-patient-specific-median-dev`."""
    args = ["individual", "--preset", "patient-specific", "--patient", "119", "--epochs", "1"]
    args += ["--workers", "1", "--data-dir", str(shared_data_dir), "--cache-dir", str(beat_cache)]
    binary = ["--label-set", "binary", "--rr-features", "false"]
    folder = tmp_path_factory.mktemp("beat-trained-store")
    deviation = ["--median-deviation", "true"]
    return _trained_store(folder, empty_mlflow_db, [args, [*args, *binary], [*args, *deviation]])


@pytest.fixture
def beat_trained_models(beat_trained_store: Path, use_store_copy: Callable[[Path], Path]) -> Path:
    """A copy of `beat_trained_store` as the tracking store and working directory."""
    return use_store_copy(beat_trained_store)
