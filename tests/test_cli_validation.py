"""Values refused while the options are parsed: one line, before any data is read or run made."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from ecg_platform.cli import cli
from ecg_platform.cli.types import MAX_SEED


def _all_runs() -> list:
    client = MlflowClient()
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("individual", "--lr", "nan"),
        ("individual", "--lr", "inf"),
        ("pretrain", "--weight-decay", "nan"),
        ("finetune", "--encoder-lr-scale", "nan"),
        ("reproduce", "--encoder-lr-scale", "-inf"),
        ("grid-search", "--grid-lrs", "0.01,nan"),
        ("pretrain", "--seed", "-1"),
        ("individual", "--seed", str(MAX_SEED + 1)),
        ("individual", "--epochs", "2.5"),
        ("individual", "--patient", ",,"),
    ],
)
def test_a_bad_value_is_one_line_and_no_run(
    mlflow_store: str, tmp_path: Path, command: str, option: str, value: str
) -> None:
    # a data directory that does not exist: reading it would fail with another message
    args = [command, "--data-dir", str(tmp_path / "absent"), "--patient", "119", option, value]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: Invalid value for '{option}'"), line
    assert _all_runs() == []


def test_a_repeated_patient_trains_once(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    args = ["individual", "--data-dir", str(excerpt_dir), "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, [*args, "--patient", "119,,119", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    (run,) = _all_runs()
    assert run.data.tags["patient"] == "119"
    assert "mlflow.parentRunId" not in run.data.tags


def test_averaging_with_early_stopping_is_one_line_and_no_run(
    mlflow_store: str, excerpt_dir: Path
) -> None:
    args = ["pretrain", "--data-dir", str(excerpt_dir), "--average-last", "5"]
    result = CliRunner().invoke(cli, [*args, "--early-stopping", "true", "--epochs", "1"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: averaging the last epochs' weights needs a known last epoch: turn early "
        "stopping off, or average_last to 0\n"
    )
    assert _all_runs() == []


@pytest.mark.parametrize("command", ["pretrain", "individual", "grid-search", "reproduce"])
def test_an_unknown_preset_stops_before_the_tracking_store_is_opened(
    excerpt_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The preset is part of the data config, resolved before MLflow opens (and creates) the
    store: a typo costs a fraction of a second instead of MLflow's start-up."""
    store = tmp_path / "never.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    args = [command, "--data-dir", str(excerpt_dir), "--preset", "nope"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown preset 'nope'; known presets: ")
    assert len(result.output.strip().splitlines()) == 1
    assert not store.exists()
