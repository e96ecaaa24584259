"""The executors on this machine: the local pool and Ray (1 and 2 workers), and a Ray cluster of a
head and a second node process on 127.0.0.1 standing in for a second machine.

Per case: the start (a fresh executor's first no-op job: spawning workers or starting Ray),
no-op jobs/s on the warm executor and the worker time each costs (workers / rate), the wall time
of a fixed grid search (real training, tracked; a fresh store per case, so nothing is reused)
and a grid job's worker seconds outside its epochs (run creation, data, logging, taking and
returning the job; from the grid's own runs). Then the tracking server's write rate: threads
logging one epoch's metrics batch each, as fast as it answers. The cluster case and the write
rate log to a local `mlflow server` (sqlite; `--write-uri`: a running server, e.g. `make
server`'s PostgreSQL), which also counts the requests the grid's jobs make (its access log);
the others to a sqlite file.

    python benchmarks/bench_executor.py [--patients 105] [--epochs 2]
        [--grid-batch-sizes 16,32] [--grid-lrs 0.01,0.001] [--grid-weighted true]
        [--cases local1,local2,ray1,ray2,cluster2] [--noop-jobs 100] [--write-uri URL]
    # the issue's grid: --patients 105,106,201,203 --grid-batch-sizes 4,16,32
    #     --grid-lrs 0.1,0.01,0.001 --grid-weighted true,false --epochs 5
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from entry import run_main
from ray_cluster import free_port, local_ray_cluster  # sets Ray's loopback env

from ecg_platform.data.config import data_config
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.source import DataSource
from ecg_platform.tracking.schema import GRID_ROLE_TAG, PID_TAG
from ecg_platform.tracking.server import ServerConfig, tracking_server
from ecg_platform.tracking.store import prepare_store
from ecg_platform.workflows.executor import Job, make_executor
from ecg_platform.workflows.executor_spec import ExecutorSpec
from ecg_platform.workflows.grid_search import run_grid_search
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.settings import PATIENT_DEFAULTS, GridSpec

CASES = {  # name: (backend, workers, on a two-node cluster)
    "local1": ("local", 1, False),
    "local2": ("local", 2, False),
    "ray1": ("ray", 1, False),
    "ray2": ("ray", 2, False),
    "cluster2": ("ray", 2, True),
}
WRITE_THREADS = 8
WRITE_SECONDS = 10.0
EPOCH_METRICS = 27  # train_* and val_* (12 each), lr, epoch_seconds, ...: one batch per epoch


def main() -> None:
    args = _arguments()
    grid = GridSpec(
        tuple(int(b) for b in args.grid_batch_sizes.split(",")),
        tuple(float(lr) for lr in args.grid_lrs.split(",")),
        tuple(w.strip().lower() == "true" for w in args.grid_weighted.split(",")),
    )
    patients = tuple(args.patients.split(","))
    found = DataSource.resolve(data_config("paper"), args.data_dir)  # absolute: cases move cwd
    request = StageRequest(
        "grid-search",
        DataSource(found.data_dir.resolve(), found.cache_dir.resolve(), found.config),
        PatientSelection(patients),
        train=PATIENT_DEFAULTS.replace(epochs=args.epochs, early_stopping=False),
    )
    jobs = len(patients) * len(grid.settings())
    print(f"grid: {len(patients)} patients x {len(grid.settings())} settings = {jobs} jobs")
    print(f"at {args.epochs} epochs; {args.noop_jobs} no-op jobs per case")
    header = f"{'case':<10}{'start s':>9}{'no-op jobs/s':>14}{'ms/job':>8}"
    header += f"{'grid wall s':>13}{'grid jobs/s':>13}{'outside s/job':>16}"
    print(header + f"{'requests/job':>14}  executor")
    for name in filter(None, args.cases.split(",")):
        backend, workers, cluster = CASES[name]
        with _case_store(server=cluster) as (_, log), _cluster(cluster) as address:
            spec = ExecutorSpec(workers, backend, address)
            start, rate, where = _noop_rates(spec, args.noop_jobs)
            before, started = _requests(log), time.perf_counter()
            run_grid_search(request, grid, "individual", spec)
            wall = time.perf_counter() - started
            requests = f"{(_requests(log) - before) / jobs:.1f}" if log else "-"
            outside = _outside_epochs(MlflowClient())
        overhead_ms = workers / rate * 1000
        print(
            f"{name:<10}{start:>9.1f}{rate:>14.1f}{overhead_ms:>8.1f}{wall:>13.1f}"
            f"{jobs / wall:>13.3f}{outside:>16.2f}{requests:>14}  {where}"
        )
    with contextlib.ExitStack() as stack:
        uri = args.write_uri or stack.enter_context(_case_store(server=True))[0]
        rate = _write_rate(uri)
    server = args.write_uri or "a fresh mlflow server on sqlite, 1 worker"
    print(f"tracking writes: {rate:.0f} metric batches/s ({EPOCH_METRICS} metrics each) from")
    print(f"{WRITE_THREADS} threads for {WRITE_SECONDS:.0f} s into {server}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--patients", default="105")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--grid-batch-sizes", default="16,32")
    parser.add_argument("--grid-lrs", default="0.01,0.001")
    parser.add_argument("--grid-weighted", default="true")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--noop-jobs", type=int, default=100)
    parser.add_argument(
        "--write-uri", default="", help="measure the writes on this server (e.g. `make server`)"
    )
    return parser.parse_args()


def _noop_rates(spec: ExecutorSpec, count: int) -> tuple[float, float, str]:
    """A fresh executor's first no-op job (s), then no-op jobs/s on it once every worker has
    started (a first batch untimed), and where it ran."""
    jobs = [Job(str(i), abs, -i) for i in range(count)]
    started = time.perf_counter()
    with make_executor(spec) as executor:
        executor.run([Job("first", abs, -1)], "start")
        start = time.perf_counter() - started
        executor.run(jobs, "warm-up")
        started = time.perf_counter()
        executor.run(jobs, "no-op")
        return start, count / (time.perf_counter() - started), executor.describe()


def _outside_epochs(client: MlflowClient) -> float:
    """A grid job's mean worker seconds outside its epochs: its setting run's wall time less
    the run's `epoch_seconds`, plus the time its worker spent between the end of its previous
    setting run and the start of this one (taking the job, loading the data, returning)."""
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.{GRID_ROLE_TAG} = 'setting' and attributes.status = 'FINISHED'",
    )
    inside, spans = [], {}
    for run in runs:
        epochs = client.get_metric_history(run.info.run_id, "epoch_seconds")
        span = (run.info.start_time, run.info.end_time)
        inside.append((span[1] - span[0]) / 1000 - sum(metric.value for metric in epochs))
        spans.setdefault(run.data.tags[PID_TAG], []).append(span)
    between = [
        (later[0] - earlier[1]) / 1000
        for worker in spans.values()
        for earlier, later in itertools.pairwise(sorted(worker))
    ]
    return (sum(inside) + sum(between)) / len(inside) if inside else math.nan


@contextlib.contextmanager
def _case_store(server: bool) -> Iterator[tuple[str, Path | None]]:
    """A fresh store (a sqlite file, or an `mlflow server` on it) this process logs to: its URI
    and the server's log (None for the file)."""
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as folder:
        backend = f"sqlite:///{folder}/mlflow.db"
        prepare_store(backend)
        with contextlib.ExitStack() as stack:
            uri, log = backend, None
            if server:
                config = ServerConfig(root=Path(folder), port=free_port(), workers=1)
                stack.enter_context(tracking_server(config, backend))
                uri, log = config.url, Path(folder) / "mlflow-server.log"
            mlflow.set_tracking_uri(uri)
            with _cwd(Path(folder)):
                yield uri, log
            mlflow.set_tracking_uri(None)


def _requests(log: Path | None) -> int:
    """The API requests the server has answered so far (its access log's lines)."""
    if log is None:
        return 0
    return sum(" /api/" in line for line in log.read_text(errors="replace").splitlines())


@contextlib.contextmanager
def _cluster(wanted: bool) -> Iterator[str]:
    """The address of a head plus a second node on 127.0.0.1, or empty (a local Ray)."""
    if not wanted:
        yield ""
        return
    with local_ray_cluster(nodes=2, cpus_per_node=1) as address:
        yield address


@contextlib.contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _write_rate(uri: str) -> float:
    """Metric batches per second that `WRITE_THREADS` threads get logged into one run each."""
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"bench-writes-{time.time_ns()}")
    runs = [client.create_run(experiment).info.run_id for _ in range(WRITE_THREADS)]
    counts = [0] * WRITE_THREADS
    stop = time.perf_counter() + WRITE_SECONDS

    def write(index: int) -> None:
        step = 0
        while time.perf_counter() < stop:
            now = int(time.time() * 1000)
            batch = [Metric(f"m{k}", 0.5, now, step) for k in range(EPOCH_METRICS)]
            client.log_batch(runs[index], metrics=batch)
            counts[index] += 1
            step += 1

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / WRITE_SECONDS


if __name__ == "__main__":
    run_main(main)
