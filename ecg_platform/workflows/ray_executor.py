"""The executor on Ray (`pip install 'ecg-platform[ray]'`): one Ray task per job, asking for its
share of the cluster's CPUs, so that the jobs of a fan-out spread over every node.

Without an address it starts a Ray on this machine for the command (listening on 127.0.0.1
only) and stops it at the end; with `auto` or `ray://host:port` it joins that cluster and only
disconnects. Workers log to the parent's tracking URI, so a cluster needs a tracking server
every node reaches: a store that is a file of this machine is refused before any job starts.
Ray's own task retries are off: a job whose worker died is reported as such, and
`Executor.run` runs it once more, as for the local pool.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.worker_runs import driver_only_store, tracking_uri
from ecg_platform.workflows.executor import (
    Executor,
    Job,
    JobResult,
    call_job_in_worker,
    cpu_cores,
    dead_worker_result,
    threads_per_worker,
)
from ecg_platform.workflows.worker_process import prepare_worker

T = TypeVar("T")
# Read by Ray when it is imported: a Ray of our own then binds 127.0.0.1 instead of every
# interface (it is for this machine only).
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SERVER_HINT = (
    "start a tracking server every node can reach (`ecg-platform server` or `make server`, "
    "README: Scale out) and set MLFLOW_TRACKING_URI=http://HOST:5000"
)


def refuse_driver_only_store(address: str, uri: str | None = None) -> None:
    """Raise one line when the workers of the cluster at `address` (empty: a Ray of this
    machine, which may share a local store) could not reach the tracking store `uri` (default:
    this process's)."""
    uri = uri or tracking_uri()
    if address and driver_only_store(uri):
        raise EcgPlatformError(
            f"the Ray cluster at {address} cannot reach the tracking store {uri}, a file of "
            f"this machine; {SERVER_HINT}"
        )


def run_ray_task(job: Job[T], uri: str, threads: int, cwd: str) -> JobResult[T]:
    """One job in a Ray worker: set up like a local worker, in the parent's working directory
    where this node has it (relative data, cache and artifact paths then mean the same)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    prepare_worker(uri, threads)
    return call_job_in_worker(job)


class RayExecutor(Executor):
    """`workers` Ray tasks at once (None: one per CPU of the cluster), each asking for
    cluster CPUs / workers CPUs and using as many torch threads. Connects on first use."""

    def __init__(self, workers: int | None, address: str = "") -> None:
        if workers is not None and workers < 1:
            raise EcgPlatformError(f"workers must be at least 1, not {workers}")
        self.requested, self.address = workers, address
        self.workers, self.threads, self.nodes = workers or 0, 1, 0
        self._task: Any = None
        self._owns_ray = False
        self._running: list[Any] = []

    def describe(self) -> str:
        self._connect()
        where = f"Ray at {self.address}" if self.address else "a local Ray"
        return (
            f"{where} ({self.nodes} node(s)): {self.workers} worker(s) x {self.threads} thread(s)"
        )

    def completed(self, jobs: Sequence[Job[T]]) -> Iterator[JobResult[T]]:
        import ray

        self._connect()
        uri, cwd = tracking_uri(), os.getcwd()
        names = {self._task.remote(job, uri, self.threads, cwd): job.name for job in jobs}
        self._running = list(names)
        while self._running:
            (ready,), self._running = ray.wait(self._running, num_returns=1)
            yield _result(ray, ready, names[ready])

    def close(self, interrupted: bool) -> None:
        if self._task is None:
            return
        import ray

        if interrupted:
            for ref in self._running:
                ray.cancel(ref)  # KeyboardInterrupt in the task: its run ends KILLED
        if self._owns_ray:
            ray.shutdown()  # our own Ray stops; a cluster is only left
        self._task, self._running = None, []

    def _connect(self) -> None:
        """Join the cluster (or start a local Ray) once, and size the tasks to its CPUs."""
        if self._task is not None:
            return
        refuse_driver_only_store(self.address)
        if not self.address:
            os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
        import ray

        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            _init(ray, self.address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.nodes = sum(node["Alive"] for node in ray.nodes())
        self.workers = self.requested or cpus
        self.threads = threads_per_worker(self.workers, cpus)
        self._task = ray.remote(run_ray_task).options(num_cpus=self.threads, max_retries=0)


def _init(ray: Any, address: str) -> None:
    """`ray.init`: join `address`, or start a Ray with this machine's cores; one line on error."""
    quiet = {"logging_level": logging.WARNING, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(address="local", num_cpus=cpu_cores(), include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        target = f"the Ray cluster at {address}" if address else "a local Ray"
        raise EcgPlatformError(f"cannot start or join {target}: {exc}") from None


def _result(ray: Any, ref: Any, name: str) -> JobResult[Any]:
    """The job's result; a worker that died under it (killed, crashed, node lost) says so."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # raised outside `call_job`'s net (rare)
        return JobResult(name, None, f"{type(exc.cause).__name__}: {exc.cause}", math.nan)
    except ray.exceptions.RayError as exc:
        return dead_worker_result(name, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
