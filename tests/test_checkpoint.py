"""Checkpoints: round trip, atomic replacement, no pickled code executed, clear errors."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch

from ecg_platform.engine.checkpoint import load_checkpoint, save_checkpoint
from ecg_platform.errors import EcgPlatformError


class Payload:
    """An arbitrary class: unpickling it would run code, so weights_only loading refuses it."""


def training_like_state() -> dict:
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [{"epoch": 1, "lr": 1e-3, "train": {"loss": 0.5}, "val": {"loss": math.inf}}],
        "rng": {"torch": torch.get_rng_state(), "sampler": torch.Generator().get_state()},
    }


def test_round_trip(tmp_path: Path) -> None:
    state = training_like_state()
    path = tmp_path / "nested" / "last.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])
    assert loaded["optimizer"]["state"][0]["exp_avg"].shape == (1, 3)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, {"epoch": 2, "unpicklable": lambda: None})
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"payload": Payload()}, path)
    with pytest.raises(EcgPlatformError, match="unreadable"):
        load_checkpoint(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "torn.pt"
    save_checkpoint(path, training_like_state())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(EcgPlatformError, match="delete it to start afresh"):
        load_checkpoint(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EcgPlatformError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
