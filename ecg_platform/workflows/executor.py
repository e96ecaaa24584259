"""One interface for running independent jobs (grid settings, patients' runs), and its first
backend: a pool of local worker processes.

`Executor.run(jobs, label)` is what every fan-out calls. It shows progress, isolates failures
(a job that raises, or whose worker dies, is reported as failed and the others go on) and ends
FAILED the MLflow runs a dead job left RUNNING. A backend only implements `completed` (each job's
result as it finishes), `describe` and `close`; workers call `call_job` and are set up with
`prepare_worker`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.worker_runs import fail_open_children, tracking_uri, use_tracking_uri
from ecg_platform.workflows.progress import Progress

T = TypeVar("T")
DEAD_WORKER = "its worker process died"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job(Generic[T]):
    """`function(argument)` somewhere: a module-level function and a picklable argument, so that
    any backend can ship it. `name` labels its result; the MLflow runs it starts nest under
    `parent_run_id`, where one its dead worker left RUNNING is ended FAILED."""

    name: str
    function: Callable[[Any], T]
    argument: Any
    parent_run_id: str | None = None


@dataclass(frozen=True)
class JobResult(Generic[T]):
    """One job's return value, or the error that stopped it; its wall time in seconds."""

    name: str
    value: T | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the job returned."""
        return self.error is None


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads per worker so that workers x threads <= cores (at least one)."""
    return max(1, cpu_cores() // workers)


def make_executor(workers: int) -> Executor:
    """The executor the workflows use: `workers` local processes (one: this process)."""
    return LocalPoolExecutor(workers)


class Executor(ABC):
    """Runs independent jobs, `workers` at a time; use it as a context manager."""

    workers: int

    def run(self, jobs: Sequence[Job[T]], label: str) -> dict[str, JobResult[T]]:
        """Every job's result by name, in the order of `jobs`, one progress line each."""
        progress = Progress(label, len(jobs))
        results: dict[str, JobResult[T]] = {}
        try:
            for result in self.completed(jobs):
                results[result.name] = result
                progress.finished(result.name, result.error, result.seconds)
        finally:
            progress.close()
        failed_parents = {job.parent_run_id for job in jobs if not results[job.name].ok}
        for parent_run_id in sorted(filter(None, failed_parents)):
            fail_open_children(parent_run_id, DEAD_WORKER)  # every job has ended: none is live
        return {job.name: results[job.name] for job in jobs}

    @abstractmethod
    def completed(self, jobs: Sequence[Job[T]]) -> Iterator[JobResult[T]]:
        """Each job's result as it finishes; a failed job or a dead worker is a result too."""

    @abstractmethod
    def describe(self) -> str:
        """Where the jobs run, for the terminal, e.g. `2 worker(s) x 1 thread(s)`."""

    @abstractmethod
    def close(self, interrupted: bool) -> None:
        """Release the workers; `interrupted` (Ctrl-C): stop the running jobs (runs end KILLED)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.close(interrupted=kind is not None and issubclass(kind, KeyboardInterrupt))


def call_job(job: Job[T]) -> JobResult[T]:
    """Run one job where it is (a worker): an exception becomes its one-line description."""
    started = time.perf_counter()
    try:
        value = job.function(job.argument)
    except Exception as exc:  # a failed job is reported; the others go on
        if not isinstance(exc, EcgPlatformError):
            log.warning("job %s failed", job.name, exc_info=True)
        return JobResult(job.name, None, f"{type(exc).__name__}: {exc}", _since(started))
    return JobResult(job.name, value, None, _since(started))


def prepare_worker(uri: str, threads: int, parent_pid: int | None = None) -> None:
    """Worker set-up: the parent's store, its share of the cores, no bars, Ctrl-C left to runs;
    with `parent_pid`, death with that parent."""
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a running run still ends KILLED (stage_run)
    sys.stderr = _NotATerminal(sys.stderr)
    use_tracking_uri(uri)
    torch.set_num_threads(threads)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux `PR_SET_PDEATHSIG`), so
    that a `kill -9` of a command leaves no worker finishing jobs nobody waits for; the runs
    such a worker leaves RUNNING are ended by the next command (`fail_runs_of_dead_processes`).
    Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


class LocalPoolExecutor(Executor):
    """`workers` spawned processes (fresh interpreters: no forked torch or MLflow state), started
    on first use and reused, each with cores / workers torch threads; one worker runs the jobs in
    this process, with its threads as they are. A worker that dies breaks the pool: the jobs in
    it are reported dead and the next `run` starts a fresh pool."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise EcgPlatformError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"{self.workers} worker(s) x {threads_per_worker(self.workers)} thread(s)"

    def completed(self, jobs: Sequence[Job[T]]) -> Iterator[JobResult[T]]:
        if self.workers == 1:
            yield from map(call_job, jobs)
            return
        pool = self._pool()
        futures: dict[Future[JobResult[T]], str] = {
            pool.submit(call_job, job): job.name for job in jobs
        }
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                self._drop_broken_pool()
                yield JobResult(futures[future], None, f"{DEAD_WORKER}: {exc}", math.nan)

    def close(self, interrupted: bool) -> None:
        if self.pool is None:
            return
        if interrupted:
            for child in multiprocessing.active_children():
                child.terminate()  # their open runs end KILLED
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)
        self.pool = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=prepare_worker,
                initargs=(tracking_uri(), threads_per_worker(self.workers), os.getpid()),
            )
        return self.pool

    def _drop_broken_pool(self) -> None:
        """Wait until the broken pool's processes are gone (so no run of theirs is still being
        written), then forget it."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _NotATerminal:
    """A stream that says it is not a terminal, so workers draw no bars over the parent's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _since(started: float) -> float:
    return time.perf_counter() - started
