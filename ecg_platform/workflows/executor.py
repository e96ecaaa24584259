"""One interface for running independent jobs (grid settings, patients' runs), and its default
backend: a pool of local worker processes (`ray_executor.RayExecutor` is the other).

`Executor.run(jobs, label)` is what every fan-out calls. It shows progress, isolates failures
(a job that raises is reported as failed and the others go on), runs a job whose worker died
once more before reporting it failed, ends FAILED the MLflow runs a dead worker left RUNNING and
logs what the workers warned about (a job that hit CPython 3.11.7's spurious SystemError runs once
more too). A backend only implements `completed` (each job's result as it finishes), `describe`
and `close`; its workers call `call_job_in_worker`.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.worker_runs import fail_open_children, tracking_uri
from ecg_platform.workflows.executor_spec import Workers, as_spec
from ecg_platform.workflows.progress import Progress
from ecg_platform.workflows.worker_process import captured_log, prepare_local_worker

T = TypeVar("T")
DEAD_WORKER = "its worker process died"
ATTEMPTS = 2  # a job whose worker died (crash, kill, lost node) runs once more
# CPython 3.11.7 raises this now and then for no fault of the code (python/cpython#106905,
# fixed in 3.11.8); it struck one of about 260 runs of `reproduce`.
SPURIOUS_CPYTHON_ERROR = "AST constructor recursion depth mismatch"
# imported once by the fork server; each worker it forks has them without importing them again
WORKER_MODULES = ["ecg_platform.workflows.reproduce", "ecg_platform.workflows.grid_search"]
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
    """One job's return value, or the error that stopped it; its wall time in seconds.
    `retryable`: the error is not the job's (its worker died, or CPython's spurious error), so
    it runs once more;
    `log`: what the worker warned about while running it, for the parent's log."""

    name: str
    value: T | None
    error: str | None
    seconds: float
    retryable: bool = False
    log: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the job returned."""
        return self.error is None


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker so that workers x threads <= cores (default: this machine's)."""
    return max(1, (cores or cpu_cores()) // workers)


def make_executor(workers: Workers) -> Executor:
    """The executor the workflows use: a worker count is that many local processes (one: this
    process); a spec may name Ray, imported only then."""
    spec = as_spec(workers)
    if spec.backend == "ray":
        from ecg_platform.workflows.ray_executor import RayExecutor

        return RayExecutor(spec.workers, spec.ray_address)
    return LocalPoolExecutor(spec.workers or cpu_cores())


def dead_worker_result(name: str, detail: str) -> JobResult[Any]:
    """The result of a job whose worker died under it."""
    return JobResult(name, None, f"{DEAD_WORKER}: {detail}", math.nan, retryable=True)


class Executor(ABC):
    """Runs independent jobs, `workers` at a time; use it as a context manager."""

    workers: int

    @property
    def in_process(self) -> bool:
        """Whether jobs run one at a time in this process (so in its active MLflow run)."""
        return False

    def run(self, jobs: Sequence[Job[T]], label: str) -> dict[str, JobResult[T]]:
        """Every job's result by name, in the order of `jobs`, one progress line each. Jobs
        whose worker died run once more after the others (a crash, a lost node, not a bug), as
        do jobs that hit CPython's spurious error."""
        progress = Progress(label, len(jobs))
        results: dict[str, JobResult[T]] = {}
        pending = list(jobs)
        try:
            for attempt in range(1, ATTEMPTS + 1):
                died = []
                for result in self.completed(pending):
                    for line in result.log:
                        log.warning("[%s] %s", result.name, line)
                    if result.retryable and attempt < ATTEMPTS:
                        log.warning("[%s] %s; running it once more", result.name, result.error)
                        died.append(result.name)
                        continue
                    results[result.name] = result
                    progress.finished(result.name, result.error, result.seconds)
                self._end_orphaned_runs([job for job in pending if job.name in died])
                pending = [job for job in pending if job.name in died]
                if not pending:
                    break
        finally:
            progress.close()
        self._end_orphaned_runs([job for job in jobs if not results[job.name].ok])
        return {job.name: results[job.name] for job in jobs}

    @staticmethod
    def _end_orphaned_runs(jobs: Sequence[Job[Any]]) -> None:
        """End FAILED the runs left RUNNING under these jobs' parents; call it only when no job
        of theirs runs any more."""
        for parent_run_id in sorted({job.parent_run_id for job in jobs if job.parent_run_id}):
            fail_open_children(parent_run_id, DEAD_WORKER)

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
    """Run one job where it is: an exception becomes its one-line description."""
    started = time.perf_counter()
    try:
        value = job.function(job.argument)
    except Exception as exc:  # a failed job is reported; the others go on
        if not isinstance(exc, EcgPlatformError):
            log.warning("job %s failed", job.name, exc_info=True)
        error, seconds = f"{type(exc).__name__}: {exc}", _since(started)
        spurious = isinstance(exc, SystemError) and SPURIOUS_CPYTHON_ERROR in str(exc)
        return JobResult(job.name, None, error, seconds, retryable=spurious)
    return JobResult(job.name, value, None, _since(started))


def call_job_in_worker(job: Job[T]) -> JobResult[T]:
    """`call_job` in a worker process: its warnings and tracebacks travel back in the result."""
    with captured_log() as lines:
        result = call_job(job)
    return replace(result, log=tuple(lines))


class LocalPoolExecutor(Executor):
    """`workers` local processes, started on first use and reused, each with cores / workers
    torch threads, each killed when this process dies; one worker runs the jobs in this process,
    with its threads as they are. Workers are forked by a fork server that imported torch, MLflow
    and the workflows once (`worker_context`): no torch or MLflow state of this process, and no
    ~5 s of imports per worker. A worker that dies breaks the pool: the jobs in it are reported
    dead (and run again by `run` in a fresh pool)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise EcgPlatformError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    @property
    def in_process(self) -> bool:
        return self.workers == 1

    def describe(self) -> str:
        return f"{self.workers} worker(s) x {threads_per_worker(self.workers)} thread(s)"

    def completed(self, jobs: Sequence[Job[T]]) -> Iterator[JobResult[T]]:
        if self.workers == 1:
            yield from map(call_job, jobs)
            return
        pool = self._pool()
        futures: dict[Future[JobResult[T]], str] = {
            pool.submit(call_job_in_worker, job): job.name for job in jobs
        }
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                self._drop_broken_pool()
                yield dead_worker_result(futures[future], str(exc))

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
            threads = threads_per_worker(self.workers)
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=worker_context(),
                initializer=prepare_local_worker,
                initargs=(tracking_uri(), threads, os.getpid(), os.getcwd(), dict(os.environ)),
            )
        return self.pool

    def _drop_broken_pool(self) -> None:
        """Wait until the broken pool's processes are gone (so no run of theirs is still being
        written), then forget it."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


@functools.cache
def worker_context() -> multiprocessing.context.BaseContext:
    """The fork server, started with the first pool and kept for this process's later pools;
    spawn where there is none (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


def _since(started: float) -> float:
    return time.perf_counter() - started
