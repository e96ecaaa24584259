"""Independent jobs (grid settings, patients' runs) in worker processes, with progress and ETA.

Workers are spawned (a fresh interpreter each: no forked torch or MLflow state), log to the
parent's tracking URI, and split the CPU cores between them (`torch.set_num_threads`). A job
that raises is reported as failed and the others go on. One worker runs jobs in this process.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.worker_runs import tracking_uri, use_tracking_uri

T = TypeVar("T")
log = logging.getLogger(__name__)


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads per worker so that workers x threads <= cores (at least one)."""
    return max(1, cpu_cores() // workers)


@dataclass(frozen=True)
class JobResult(Generic[T]):
    """One job's return value, or the error that stopped it; its wall time in seconds."""

    name: str
    value: T | None
    error: str | None
    seconds: float


def _guarded(function: Callable[[Any], T], argument: Any) -> tuple[T | None, str | None, float]:
    """Call `function(argument)`; an exception becomes its one-line description."""
    started = time.perf_counter()
    try:
        value = function(argument)
    except Exception as exc:  # a failed job is reported; the others go on
        if not isinstance(exc, EcgPlatformError):
            log.warning("job failed", exc_info=True)
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started
    return value, None, time.perf_counter() - started


class _NotATerminal:
    """A stream that says it is not a terminal, so workers draw no bars over the parent's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _init_worker(uri: str, threads: int) -> None:
    """Worker set-up: the parent's store, its share of the cores, no bars, Ctrl-C left to runs."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a running run still ends KILLED (stage_run)
    sys.stderr = _NotATerminal(sys.stderr)
    use_tracking_uri(uri)
    torch.set_num_threads(threads)


def announce(message: str) -> None:
    """One progress line on stderr (beside any bar)."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _eta(done: int, total: int, elapsed: float) -> str:
    if done == 0 or done == total:
        return ""
    seconds = elapsed / done * (total - done)
    return f", ETA {int(seconds // 60)} min {math.ceil(seconds % 60):02d} s"


class Progress:
    """A bar (when stderr is a terminal) and one line per finished job, with an ETA."""

    def __init__(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()
        self.bar = tqdm(total=total, desc=label, unit="job", disable=not sys.stderr.isatty())

    def finished(self, result: JobResult[Any]) -> None:
        """Count one job and say how it ended."""
        self.done += 1
        self.bar.update()
        status = "failed: " + result.error if result.error else "done"
        eta = _eta(self.done, self.total, time.perf_counter() - self.started)
        line = (
            f"[{self.label}] {self.done}/{self.total} {result.name} {status} "
            f"({result.seconds:.0f} s){eta}"
        )
        announce(line)

    def close(self) -> None:
        """Remove the bar."""
        self.bar.close()


class Workers:
    """A pool of `count` spawned worker processes, started on first use and reused."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise EcgPlatformError(f"workers must be at least 1, not {count}")
        self.count = count
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            interrupted = exc_info[0] is not None and issubclass(exc_info[0], KeyboardInterrupt)
            if interrupted:
                for child in multiprocessing.active_children():
                    child.terminate()  # their open runs end KILLED
            self.pool.shutdown(wait=not interrupted, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(tracking_uri(), threads_per_worker(self.count)),
            )
        return self.pool

    def run(
        self, function: Callable[[Any], T], jobs: Mapping[str, Any], label: str
    ) -> dict[str, JobResult[T]]:
        """`function(job)` for every job (a module-level function, picklable arguments);
        results by job name, in the order of `jobs`."""
        progress = Progress(label, len(jobs))
        results: dict[str, JobResult[T]] = {}
        try:
            for result in self._results(function, jobs):
                results[result.name] = result
                progress.finished(result)
        finally:
            progress.close()
        return {name: results[name] for name in jobs}

    def _results(
        self, function: Callable[[Any], T], jobs: Mapping[str, Any]
    ) -> Iterator[JobResult[T]]:
        if self.count == 1:
            for name, job in jobs.items():
                yield JobResult(name, *_guarded(function, job))
            return
        futures: dict[Future, str] = {
            self._executor().submit(_guarded, function, job): name for name, job in jobs.items()
        }
        for future in as_completed(futures):
            try:
                yield JobResult(futures[future], *future.result())
            except BrokenProcessPool as exc:
                if self.pool is not None:  # the next `run` starts a fresh pool
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = None
                yield JobResult(futures[future], None, f"worker process died: {exc}", math.nan)
