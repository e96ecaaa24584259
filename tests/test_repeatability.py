"""The same command twice, each in a fresh process, gives the same numbers and weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from ecg_platform.tracking.model_io import load_state_dict
from ecg_platform.tracking.schema import TRACKING


@pytest.mark.slow
def test_the_same_individual_command_twice_gives_the_same_test_metrics_and_weights(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    """Fresh processes (their own hash seeds, no state left from the other): every `test_*`
    metric of the two runs is equal, not close, and so is every registered weight."""
    command = [sys.executable, "-m", "ecg_platform", "individual", "--patient", "233"]
    command += ["--epochs", "2", "--data-dir", str(excerpt_dir)]
    command += ["--cache-dir", str(tmp_path / "cache")]
    env = os.environ | {"MLFLOW_TRACKING_URI": mlflow_store}
    for _ in range(2):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient()
    experiment = client.get_experiment_by_name(TRACKING.experiment("individual"))
    first, second = client.search_runs([experiment.experiment_id], order_by=["start_time"])
    assert first.info.run_id != second.info.run_id
    tested = {key: value for key, value in first.data.metrics.items() if key.startswith("test_")}
    assert {"test_balanced_accuracy", "test_loss", "test_tp"} <= set(tested)
    assert tested == {k: v for k, v in second.data.metrics.items() if k.startswith("test_")}
    name = TRACKING.registered_model("individual", "233")
    one, two = (load_state_dict(f"models:/{name}/{version}") for version in (1, 2))
    assert one.keys() == two.keys()
    for key in one:
        assert torch.equal(one[key], two[key]), key
