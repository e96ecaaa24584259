"""Faults and hostile inputs: what the platform refuses, and that it refuses before harm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from ecg_platform.cli import cli
from ecg_platform.data.config import data_config
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.tracking.model_io import (
    check_pickle_free,
    load_state_dict,
    log_model,
    pip_requirements,
)
from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.registry import promote_if_better, register_model
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import TRACKING


class _Payload(torch.nn.Linear):
    """A module whose unpickling opens (creates) the marker file: stands in for any code."""

    marker = ""

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _pickle_model(folder: Path, marker: Path) -> Path:
    """A pickle-format MLflow PyTorch model whose loading creates `marker`."""
    payload = _Payload(2, 1)
    payload.marker = str(marker)
    # explicit requirements: inferring them would load (and so trigger) the model while saving
    mlflow.pytorch.save_model(
        payload, folder, serialization_format="pickle", pip_requirements=["torch"]
    )
    assert not marker.exists()
    return folder


def _pt2_model(folder: Path) -> Path:
    """One of the platform's own models, saved like `log_model` saves it (its requirements
    given: MLflow inferring them loads the model in a subprocess, 8 s of this test's 10)."""
    example = np.zeros((2, 1, 128), dtype=np.float32)
    mlflow.pytorch.save_model(
        CNN1D(),
        folder,
        input_example=example,
        serialization_format="pt2",
        pip_requirements=pip_requirements(),
    )
    return folder


def test_the_crafted_model_really_runs_code_when_mlflow_unpickles_it(tmp_path: Path) -> None:
    """The control: without the platform's check the payload runs (so the tests below can fail)."""
    marker = tmp_path / "pwned"
    model = _pickle_model(tmp_path / "model", marker)
    with pytest.raises(Exception):  # noqa: B017 - whatever the payload returns
        mlflow.pytorch.load_model(str(model)).state_dict()
    assert marker.exists()


def test_pretrained_dir_in_pickle_format_is_refused_before_unpickling(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    model = _pickle_model(tmp_path / "model", marker)
    args = ["finetune", "--data-dir", str(excerpt_dir), "--patient", "233", "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--pretrained", str(model), "--force"])
    assert result.exit_code == 1
    assert "refusing" in result.output and "model.pth" in result.output
    assert "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if "Error" in line]
    assert error.startswith("Error: refusing")
    assert not marker.exists()


def test_pickle_model_registered_as_champion_is_refused_on_a_plain_finetune(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    model = _pickle_model(tmp_path / "model", marker)
    data_hash = data_config("paper").hash()
    with stage_run("pretrain", "all", {"data_config_hash": data_hash}):
        mlflow.log_artifacts(str(model), "model")
        uri = f"runs:/{mlflow.active_run().info.run_id}/model"
    version = register_model(uri, TRACKING.pretrained_model, {"data_config_hash": data_hash})
    promote_if_better(TRACKING.pretrained_model, version)
    args = ["finetune", "--data-dir", str(excerpt_dir), "--patient", "233", "--epochs", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "refusing models:/ecg-pretrained/1" in result.output
    assert not marker.exists()


def _with_code(model: Path) -> None:
    (model / "code").mkdir()
    (model / "code" / "torch_helpers.py").write_text("raise SystemExit('imported')\n")
    spec = yaml.safe_load((model / "MLmodel").read_text())
    spec["flavors"]["pytorch"]["code"] = "code"
    (model / "MLmodel").write_text(yaml.safe_dump(spec))


def _with_pickle_beside(model: Path) -> None:
    shutil.copy(model / "data" / "model.pt2", model / "data" / "model.pth")


@pytest.mark.parametrize(
    ("tamper", "says"),
    [(_with_code, "bundles code"), (_with_pickle_beside, "model.pt2, model.pth")],
)
def test_a_tampered_pt2_model_is_refused(tmp_path: Path, tamper, says: str) -> None:
    model = _pt2_model(tmp_path / "model")
    check_pickle_free(model, "m")
    tamper(model)
    with pytest.raises(EcgPlatformError, match=says):
        check_pickle_free(model, "m")


def test_a_folder_without_mlmodel_is_no_model(tmp_path: Path) -> None:
    with pytest.raises(EcgPlatformError, match="no MLmodel file"):
        load_state_dict(str(tmp_path))


def test_the_platforms_own_models_still_load(mlflow_store: str) -> None:
    net = CNN1D()
    with stage_run("pretrain", "all", {}):
        uri = log_model(net, np.zeros((2, 1, 128), dtype=np.float32))
    weights = load_state_dict(uri)
    torch.testing.assert_close(
        weights["head.output.weight"], net.state_dict()["head.output.weight"]
    )


def _platform(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """The real `ecg-platform` command in its own process."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "ecg-platform"), *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_four_commands_first_using_a_new_sqlite_store_leave_it_usable(
    excerpt_dir: Path, tmp_path: Path
) -> None:
    """Four fine-tunes on a new store all get to ask its registry (and stop: nothing pretrained
    yet); the store is migrated once, under its lock, instead of racing migrations that failed
    with `duplicate column name: step` and bricked the file."""
    uri = f"sqlite:///{tmp_path}/fresh.db"
    args = ("finetune", "--patient", "233", "--data-dir", str(excerpt_dir))
    commands = [_platform(*args, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri}) for _ in range(4)]
    outputs = [command.communicate(timeout=300)[0] for command in commands]
    for output in outputs:
        assert output.strip().splitlines()[-1].startswith("Error: no pretrained model yet"), output
        assert "Traceback" not in output
    assert mlflow.MlflowClient(uri).search_experiments()  # the store still works


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://127.0.0.1:{port}", "no tracking server answers at http://127.0.0.1:{port}"),
        ("foo://bar", "unsupported tracking URI 'foo://bar'"),
    ],
)
def test_a_bad_tracking_uri_fails_fast_in_one_line(
    excerpt_dir: Path, tmp_path: Path, uri: str, says: str
) -> None:
    port = str(free_port())
    env = {"MLFLOW_TRACKING_URI": uri.format(port=port)}
    args = ("individual", "--patient", "233", "--data-dir", str(excerpt_dir))
    started = time.monotonic()
    output = _platform(*args, cwd=tmp_path, env=env).communicate(timeout=60)[0]
    assert time.monotonic() - started < 30  # the store check itself: 5 s at most; imports: the rest
    assert output.strip().splitlines() == [f"Error: {output.split('Error: ', 1)[-1].strip()}"]
    assert says.format(port=port) in output


def test_a_store_file_that_is_no_database_is_named_in_one_line(
    excerpt_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken.db").write_text("not a database")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/broken.db"}
    args = ("individual", "--patient", "233", "--data-dir", str(excerpt_dir))
    output = _platform(*args, cwd=tmp_path, env=env).communicate(timeout=60)[0]
    assert output.strip().splitlines() == [
        f"Error: {tmp_path}/broken.db is not a usable MLflow SQLite store (file is not a "
        "database); move it away or set MLFLOW_TRACKING_URI to sqlite:///PATH, "
        "postgresql://..., or http://HOST:PORT"
    ]


def test_a_report_of_a_run_that_does_not_exist_says_so(
    mlflow_store: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    """Before the data loads: here a record without its signal file, which would fail there."""
    data = tmp_path / "data"
    data.mkdir()
    for suffix in (".hea", ".atr"):
        shutil.copy(excerpt_dir / f"233{suffix}", data)
    args = ["report", "--parents", "deadbeef", "--data-dir", str(data), "--patient", "233"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: no run deadbeef in {mlflow_store}"]


def test_a_directory_that_takes_no_files_fails_in_one_line(excerpt_dir: Path) -> None:
    """/proc refuses new files even to root, like a read-only mount."""
    args = ("individual", "--patient", "233", "--data-dir", str(excerpt_dir))
    output = _platform(*args, cwd=Path("/proc"), env={"MLFLOW_TRACKING_URI": ""}).communicate(
        timeout=60
    )[0]
    assert output.strip().startswith("Error: cannot write to the working directory")
    assert len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("foo://bar", "cannot load a model from 'foo://bar'"),
        ("models:/nope/abc", "malformed model URI 'models:/nope/abc'"),
        ("/no/such/best.pt", "no file or folder at /no/such/best.pt"),
    ],
)
def test_a_bad_pretrained_uri_is_named_for_what_it_is(
    mlflow_store: str, excerpt_dir: Path, uri: str, says: str
) -> None:
    """Not a data-config mismatch suggesting --force, as these were reported before."""
    args = ["finetune", "--data-dir", str(excerpt_dir), "--patient", "233", "--pretrained", uri]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert says in result.output and "--force" not in result.output


def test_a_damaged_record_blocks_only_the_commands_that_ask_for_it(
    mlflow_store: str, excerpt_dir: Path, copy_record, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    for record in ("208", "233"):
        copy_record(excerpt_dir, record, data_dir)
    dat = data_dir / "208.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    args = ["individual", "--data-dir", str(data_dir), "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--patient", "233"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, [*args, "--patient", "all"])
    assert result.exit_code == 1
    assert "208.dat" in result.output and "Traceback" not in result.output


def test_the_pipeline_command_prints_only_its_error_line(tmp_path: Path) -> None:
    """MLflow warns about the served pipeline's `predict` without type hints when the class is
    defined (they are left out on purpose); the user sees only the platform's line. A run
    without a model gets past the registry check, so the pipeline's module is imported."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = mlflow.MlflowClient(uri).create_run("0").info.run_id  # no first-use lines later
    env = {"MLFLOW_TRACKING_URI": uri}
    for model, message in {
        "models:/nope/1": "no model at models:/nope/1: check its name and version or alias",
        f"runs:/{run_id}/model": f"the run of runs:/{run_id}/model has no readable",
    }.items():
        command = _platform("pipeline", "--model", model, cwd=tmp_path, env=env)
        output = command.communicate(timeout=120)[0].strip().splitlines()
        assert command.returncode == 1
        assert len(output) == 1 and output[0].startswith(f"Error: {message}"), output
