"""Resume a fan-out: reuse what finished runs already did, run the rest through an executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ecg_platform.workflows.executor import Executor, Job, JobResult
from ecg_platform.workflows.progress import announce

T = TypeVar("T")


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Every job's outcome, in job order: reused from a finished run, or run now."""

    names: list[str]
    reused: dict[str, T]
    ran: dict[str, JobResult[T]]

    def outcomes(self) -> dict[str, T]:
        """The value of every job that was reused or returned, in job order."""
        done = self.reused | {name: result.value for name, result in self.ran.items() if result.ok}
        return {name: done[name] for name in self.names if name in done}

    def failed(self) -> dict[str, str]:
        """The error of every job that ran and failed, by name."""
        return {name: str(result.error) for name, result in self.ran.items() if not result.ok}


def run_or_reuse(
    executor: Executor,
    jobs: Sequence[Job[T]],
    reuse: Callable[[Job[T]], T | None],
    label: str,
    noun: str,
) -> Batch[T]:
    """`reuse(job)` (the outcome a finished run of the same configuration logged) where it gives
    one, else the job run by `executor`; one line says how many of each."""
    reused = {job.name: found for job in jobs if (found := reuse(job)) is not None}
    to_run = [job for job in jobs if job.name not in reused]
    announce(
        f"{label}: {len(jobs)} {noun}, {len(reused)} reused (already finished), "
        f"{len(to_run)} to run on {executor.describe()}"
    )
    return Batch([job.name for job in jobs], reused, executor.run(to_run, label))
