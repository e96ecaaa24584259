"""Where and how training runs: the device, CPU threads, the random-number state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ecg_platform.errors import EcgPlatformError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto`: CUDA when present, else the CPU; otherwise the named device, which must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise EcgPlatformError(f"unknown device {name!r}; use auto, cpu or cuda") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EcgPlatformError(f"device {name!r} requested but CUDA is not available; use auto")
    return device


SMALL_BATCH = 8  # at most this many windows per step: one CPU thread, PyTorch's own convolutions


@contextmanager
def cpu_threads(threads: int, batch_size: int) -> Iterator[int]:
    """Run the block with `threads` torch CPU threads; 0 chooses: one for small batches (their
    ops are too small to split, and a second thread that has to wait for a busy core stalls
    every step), otherwise torch's default. The previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    chosen = threads or (1 if batch_size <= SMALL_BATCH else previous)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(previous)


@contextmanager
def small_batch_kernels(batch_size: int) -> Iterator[None]:
    """For small batches, PyTorch's own im2col + GEMM convolutions instead of oneDNN's inside
    the block: a training step at batch 4 or 8 is about 1.5x faster with them (oneDNN's fixed
    cost per call dominates there), while from batch 16 on oneDNN is 2-3x faster."""
    if batch_size > SMALL_BATCH:
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def flush_denormals() -> None:
    """Treat denormal floats as zero in this process's CPU maths. As training converges, tiny
    gradients and moments turn denormal and the CPU computes on them many times slower (a
    pretraining epoch of the study: 6 s flushed, up to 37 s not; benchmarks/bench_denormals.py).
    Call it before torch's first parallel operation: its threads copy the floating-point mode
    of the thread that starts them. Values below 1e-38 change no prediction."""
    torch.set_flush_denormal(True)


flush_denormals()  # on import: every process imports the trainer before torch starts threads


def seed_everything(seed: int) -> None:
    """Seed torch's global generators (CPU and CUDA): model initialisation follows from it."""
    torch.manual_seed(seed)


def rng_state(sampler: torch.Generator) -> dict[str, Any]:
    """The global torch RNG states and the sampler's, for a checkpoint."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "sampler": sampler.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], sampler: torch.Generator) -> None:
    """Undo `rng_state`: the run continues with the random numbers it would have drawn."""
    torch.set_rng_state(state["torch"])
    sampler.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
