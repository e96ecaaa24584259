"""Where a fan-out's jobs run, as the command line chose it (light: it travels in requests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Backend = Literal["local", "ray"]
BACKENDS: tuple[Backend, ...] = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """`workers` jobs at once on `backend`: local processes, or Ray tasks. `workers` None: one
    per CPU of where they run (Ray: of the whole cluster). `ray_address` empty: start a Ray on
    this machine for the command; `auto` or `ray://host:port`: join that cluster."""

    workers: int | None
    backend: Backend = "local"
    ray_address: str = ""

    def describe(self) -> str:
        """For parameters and the terminal: `local`, `ray`, `ray auto`, `ray ray://host:10001`."""
        return " ".join(filter(None, (self.backend, self.ray_address)))


# A fan-out takes a worker count (the local pool) or a full spec.
Workers = int | ExecutorSpec


def as_spec(workers: Workers) -> ExecutorSpec:
    """The spec a worker count stands for: that many local processes."""
    return workers if isinstance(workers, ExecutorSpec) else ExecutorSpec(workers)
