"""Training checkpoints: written atomically, read without executing pickled code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ecg_platform.errors import EcgPlatformError


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
        raise EcgPlatformError(f"no checkpoint at {source}; run without --resume to start afresh")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise EcgPlatformError(
            f"checkpoint {source} is unreadable ({exc}); delete it or run without --resume"
        ) from exc
