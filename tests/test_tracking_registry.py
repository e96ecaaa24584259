"""Model logging (pt2, explicit signature and requirements), the champion rule, URI resolution."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from ecg_platform.data.config import data_config
from ecg_platform.tracking.model_io import (
    PYFUNC_CONFIG,
    load_state_dict,
    log_model,
    logged_model_uri,
    pip_requirements,
)
from ecg_platform.tracking.registry import (
    champion_version,
    promote_if_better,
    register_model,
    resolve_model_source,
)
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import model_family


class TinyNet(torch.nn.Module):
    """An encoder/head network shaped like the study's: (n, 128) windows -> (n,) probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5), torch.nn.ReLU())
        self.head = torch.nn.Linear(4 * 124, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x.unsqueeze(1)).flatten(1)
        return torch.sigmoid(self.head(features)).squeeze(1)


@pytest.fixture
def windows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(6, 128)).astype(np.float32)


def _logged_version(name: str, val_loss: float, windows: np.ndarray) -> tuple[str, TinyNet]:
    """Log and register a fresh TinyNet with its validation loss, as a workflow does."""
    torch.manual_seed(int(val_loss * 1000))
    net = TinyNet()
    with stage_run("pretrain", patient="all", tags={"data_config_hash": "h1"}):
        uri = log_model(net, windows[:3])
    version = register_model(uri, name, {"val_loss": val_loss, "data_config_hash": "h1"})
    return version, net


def test_logged_model_is_pt2_with_explicit_requirements_and_signature(
    mlflow_store: str, windows: np.ndarray
) -> None:
    with stage_run("pretrain", patient="all", tags={}):
        uri = log_model(TinyNet(), windows[:3])
    local = Path(mlflow.artifacts.download_artifacts(uri))
    assert (local / "data" / "model.pt2").is_file()
    assert not list(local.rglob("*.pth"))
    requirements = (local / "requirements.txt").read_text().split()
    assert set(pip_requirements()) <= set(requirements)
    assert not any(line.startswith("cloudpickle") for line in requirements)
    signature = yaml.safe_load((local / "MLmodel").read_text())["signature"]
    assert '"shape": [-1, 128]' in signature["inputs"]
    assert '"shape": [-1]' in signature["outputs"]


def test_registered_model_predicts_through_pyfunc_like_the_network(
    mlflow_store: str, windows: np.ndarray
) -> None:
    version, net = _logged_version("ecg-tiny", 0.4, windows)
    promote_if_better("ecg-tiny", version)
    served = mlflow.pyfunc.load_model("models:/ecg-tiny@champion", model_config=PYFUNC_CONFIG)
    with torch.no_grad():
        expected = net(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(served.predict(windows), expected, rtol=1e-5, atol=1e-6)
    weights = load_state_dict(f"models:/ecg-tiny/{version}")
    assert weights.keys() == net.state_dict().keys()
    torch.testing.assert_close(weights["head.weight"], net.head.weight.detach())


def test_champion_moves_only_to_a_lower_validation_loss(
    mlflow_store: str, windows: np.ndarray
) -> None:
    first, _ = _logged_version("ecg-tiny", 0.5, windows)
    assert promote_if_better("ecg-tiny", first)
    worse, _ = _logged_version("ecg-tiny", 0.7, windows)
    assert not promote_if_better("ecg-tiny", worse)
    assert champion_version("ecg-tiny") == first
    better, _ = _logged_version("ecg-tiny", 0.3, windows)
    assert promote_if_better("ecg-tiny", better)
    assert champion_version("ecg-tiny") == better


def test_model_uris_resolve_to_exact_versions_runs_or_nothing(
    mlflow_store: str, windows: np.ndarray
) -> None:
    assert resolve_model_source("models:/ecg-tiny@champion") is None
    version, _ = _logged_version("ecg-tiny", 0.5, windows)
    assert resolve_model_source("models:/ecg-tiny@champion") is None
    promote_if_better("ecg-tiny", version)
    source = resolve_model_source("models:/ecg-tiny@champion")
    assert source is not None
    assert (source.uri, source.version, source.data_config_hash) == (
        f"models:/ecg-tiny/{version}",
        version,
        "h1",
    )
    by_run = resolve_model_source(f"runs:/{source.run_id}/checkpoint/best.pt")
    assert by_run is not None and by_run.data_config_hash == "h1"
    assert resolve_model_source("models:/ecg-tiny/99") is None
    assert resolve_model_source("runs:/0123456789abcdef0123456789abcdef/model") is None


def test_a_runs_model_uri_is_pinned_to_that_runs_own_logged_model(
    mlflow_store: str, windows: np.ndarray
) -> None:
    nets, run_ids, model_uris = [], [], []
    for seed in (1, 2):  # two runs of one experiment, each logging a model named "model"
        torch.manual_seed(seed)
        nets.append(TinyNet())
        with stage_run("pretrain", patient="all", tags={}) as run:
            model_uris.append(log_model(nets[-1], windows[:3]))
        run_ids.append(run.run_id)
    assert [logged_model_uri(f"runs:/{run_id}/model") for run_id in run_ids] == model_uris
    for run_id, net in zip(run_ids, nets, strict=True):
        weights = load_state_dict(f"runs:/{run_id}/model")
        torch.testing.assert_close(weights["head.weight"], net.head.weight.detach())
    checkpoint = f"runs:/{run_ids[0]}/checkpoint/best.pt"
    assert logged_model_uri(checkpoint) == checkpoint  # no logged model: left as it is
    assert logged_model_uri(f"runs:/{run_ids[0]}/other") == f"runs:/{run_ids[0]}/other"


def test_checkpoint_files_load_weights_only(mlflow_store: str, tmp_path: Path) -> None:
    net = TinyNet()
    path = tmp_path / "best.pt"
    torch.save(net.state_dict(), path)
    weights = load_state_dict(str(path))
    torch.testing.assert_close(weights["head.bias"], net.head.bias.detach())


@pytest.mark.parametrize(
    ("preset", "choices", "suffix"),
    [
        ("paper", {}, ""),
        ("patient-specific", {}, "-patient-specific"),  # RR features: the beat presets' default
        ("patient-specific", {"rr_features": False}, "-patient-specific-no-rr"),
        ("inter-patient", {}, "-inter-patient-median-dev"),  # the preset's median deviation
        ("inter-patient", {"median_deviation": False}, "-inter-patient"),
        ("patient-specific", {"median_deviation": True}, "-patient-specific-median-dev"),
        ("inter-patient", {"label_set": "binary"}, "-inter-patient-binary-median-dev"),
        ("inter-patient", {"rr_variability": True}, "-inter-patient-rr-cv-median-dev"),
        ("patient-specific", {"rr_variability": True}, "-patient-specific-rr-cv"),
    ],
)
def test_each_protocol_registers_under_its_own_names(
    preset: str, choices: dict, suffix: str
) -> None:
    """Champions compare validation losses only within one protocol."""
    assert model_family(data_config(preset, **choices)) == suffix
