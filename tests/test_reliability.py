"""Faults and hostile inputs: what the platform refuses, and that it refuses before harm."""

from __future__ import annotations

import shutil
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
from ecg_platform.tracking.model_io import check_pickle_free, load_state_dict, log_model
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
    """One of the platform's own models, saved like `log_model` saves it."""
    example = np.zeros((2, 1, 128), dtype=np.float32)
    mlflow.pytorch.save_model(CNN1D(), folder, input_example=example, serialization_format="pt2")
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
    promote_if_better(TRACKING.pretrained_model, version, 0.1)
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
