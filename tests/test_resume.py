"""Resume from the command line: kill -9 a real training command midway, run the same command
again, and it continues the interrupted run from its checkpoint into the same run id, with the
uninterrupted run's result; other settings start a run of their own. Only the killed command
needs a process of its own; the later ones run in this one (each fresh process costs ~7 s of
imports on the suite's two cores)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from test_process_death import _platform, _runs, _wait_for

from ecg_platform.cli import cli
from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.schema import CHECKPOINT_KEY_TAG, FAILURE_TAG
from ecg_platform.workflows.resumable_run import CHECKPOINT_FOLDER, resumable_run, settings_key

EPOCHS = 12  # killed after 3: nine epochs (6-9 s) to notice and kill it in


def _individual(data_dir: Path, cache: Path, epochs: int = EPOCHS) -> list[str]:
    args = ["individual", "--patient", "233", "--data-dir", str(data_dir), "--cache-dir"]
    return [*args, str(cache), "--epochs", str(epochs), "--early-stopping", "false"]


def _finish(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def _test_metrics(client: MlflowClient, run_id: str) -> dict[str, float]:
    metrics = client.get_run(run_id).data.metrics
    return {key: value for key, value in metrics.items() if key.startswith("test_")}


@pytest.mark.slow
def test_a_killed_run_resumes_into_its_own_run_with_the_uninterrupted_result(
    excerpt_dir: Path, tmp_path: Path, mlflow_store: str
) -> None:
    uri = mlflow_store
    client = MlflowClient(uri)
    cache = tmp_path / "cache"
    command = _platform(*_individual(excerpt_dir, cache), cwd=tmp_path, uri=uri)
    try:

        def some_epochs_checkpointed() -> str | None:
            assert command.poll() is None, command.stdout.read()
            checkpoints = list((cache / "checkpoints").glob("*.pt"))
            running = [run for run in _runs(uri) if run.info.status == "RUNNING"]
            epochs = running and len(client.get_metric_history(running[0].info.run_id, "lr"))
            return running[0].info.run_id if checkpoints and epochs and epochs >= 3 else None

        killed = _wait_for(some_epochs_checkpointed, "three epochs checkpointed")
    finally:
        command.send_signal(signal.SIGKILL)
        command.communicate(timeout=30)
    logged_before = len(client.get_metric_history(killed, "lr"))
    assert logged_before < EPOCHS

    _finish(_individual(excerpt_dir, cache, epochs=2))
    other = [run for run in _runs(uri) if run.info.run_id != killed]
    assert len(other) == 1  # other settings: a run of their own, not the killed one resumed
    assert client.get_run(killed).info.status == "FAILED"
    assert len(list((cache / "checkpoints").glob("*.pt"))) == 1  # the killed run's, kept

    _finish(_individual(excerpt_dir, cache))
    resumed = client.get_run(killed)
    assert resumed.info.status == "FINISHED"
    assert FAILURE_TAG not in resumed.data.tags
    assert len(_runs(uri)) == 2  # resumed into the killed run: no new one
    history = client.get_metric_history(killed, "lr")
    assert {metric.step for metric in history} == set(range(1, EPOCHS + 1))
    assert not list((cache / "checkpoints").glob("*.pt"))  # removed once finished

    _finish(_individual(excerpt_dir, tmp_path / "other-cache"))
    (uninterrupted,) = [
        run
        for run in _runs(uri)
        if run.info.run_id not in {killed, other[0].info.run_id}
        and run.data.tags[CHECKPOINT_KEY_TAG] == resumed.data.tags[CHECKPOINT_KEY_TAG]
    ]
    assert _test_metrics(client, killed) == _test_metrics(client, uninterrupted.info.run_id)
    assert _test_metrics(client, killed)["test_balanced_accuracy"] > 0


HOLD_LOCK = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_the_same_settings_training_in_another_process_stop_in_one_line(
    mlflow_store: str, tmp_path: Path
) -> None:
    """A second identical command must not resume a checkpoint the first is still writing."""
    params = {"epochs": 3}
    key = settings_key("individual", "233", params)
    lock_file = tmp_path / "cache" / CHECKPOINT_FOLDER / f"{key}.lock"
    lock_file.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(EcgPlatformError, match="233 with these settings is training in another"),
            resumable_run("individual", "233", {}, params, tmp_path / "cache", "individual-233"),
        ):
            pass
        assert _runs(mlflow_store) == []  # stopped before any run existed
    finally:
        holder.communicate("")
    with resumable_run(
        "individual", "233", {}, params, tmp_path / "cache", "individual-233"
    ) as run:
        assert not run.resume  # the lock is free once its holder ended
