"""Training checkpoints: written atomically, read without executing pickled code, resumed only
under the settings that wrote them."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_platform.errors import EcgPlatformError

RESUMABLE_CHANGES = ("epochs", "device", "threads")  # settings a resumed run may change


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write `state` to a temporary file beside `path`, flush it to disk, then rename it over
    `path`: a crash leaves either the previous checkpoint or the new one, never a torn file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state saved at `path`, on the CPU (`torch.load(weights_only=True)`)."""
    source = Path(path)
    if not source.is_file():
        raise EcgPlatformError(f"no checkpoint at {source}; nothing to resume")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise EcgPlatformError(
            f"checkpoint {source} is unreadable ({exc}); delete it to start afresh"
        ) from exc


def check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> None:
    """Refuse to resume under other training settings than the checkpoint's (besides
    `RESUMABLE_CHANGES`), naming each one that differs."""
    changed = [
        f"{name}: {saved.get(name)!r} -> {value!r}"
        for name, value in current.items()
        if name not in RESUMABLE_CHANGES and saved.get(name) != value
    ]
    if changed:
        raise EcgPlatformError(
            f"checkpoint {path} comes from other settings ({'; '.join(changed)}); "
            "run with the same settings, or delete it to start afresh"
        )


def load_model_state(model: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    """Load a checkpoint's model weights, or say that they come from another model (another
    architecture, output size or side-feature count)."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise EcgPlatformError(
            f"checkpoint {path} holds another model's weights; run with the same model "
            f"settings, or delete it to start afresh ({str(exc).splitlines()[0]})"
        ) from exc
