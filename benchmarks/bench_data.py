"""Data-layer speed and memory: all records of the default data directory, `paper` preset.

Run from the repository root: `.venv/bin/python benchmarks/bench_data.py [--repeats N]`.
Prints cold (no cache) and warm (cache hit) times in process and as fresh `data summary`
processes, and the peak memory of a cold load.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from entry import run_main
from timing import summary_row, wall_and_cpu

from ecg_platform.data.config import data_config
from ecg_platform.data.dataset import load_study
from ecg_platform.data.mitdb import resolve_data_dir


def _wall(action: Callable[[], object], repeats: int) -> list[float]:
    return wall_and_cpu(action, repeats)[0]


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir, config = resolve_data_dir(args.data_dir), data_config("paper")
    scratch = Path(tempfile.mkdtemp(prefix="bench-data-"))
    fresh = iter(range(10**6))

    def load(cache_dir: Path) -> object:
        return load_study(data_dir, config, cache_dir=cache_dir, progress=False)

    def summary_process(cache_dir: Path) -> object:
        command = [sys.executable, "-m", "ecg_platform", "data", "summary", "--json"]
        command += ["--data-dir", str(data_dir), "--cache-dir", str(cache_dir)]
        return subprocess.run(command, check=True, capture_output=True)

    started = time.perf_counter()
    import sklearn.model_selection  # noqa: F401  (the build path's libraries, imported once)
    import wfdb  # noqa: F401

    import ecg_platform.data.preprocess  # noqa: F401

    import_seconds = time.perf_counter() - started
    study = load(scratch / "first")
    n_windows = sum(patient.n_windows for patient in study.patients.values())
    print(f"{len(study.patients)} records, {n_windows} windows, data from {data_dir}")
    print(f"{'measurement':<52} {'min s':>8} {'median s':>8} {'runs':>4}")
    rows = {
        "import scipy.signal + sklearn + wfdb (first time)": [import_seconds],
        "cold load_study (no cache), libraries imported": _wall(
            lambda: load(scratch / f"cold-{next(fresh)}"), args.repeats
        ),
        "warm load_study (cache hit)": _wall(lambda: load(scratch / "first"), 5),
        "`data summary` fresh process, cold cache": _wall(
            lambda: summary_process(scratch / f"cold-{next(fresh)}"), args.repeats
        ),
        "`data summary` fresh process, warm cache": _wall(
            lambda: summary_process(scratch / "first"), 5
        ),
    }
    for name, times in rows.items():
        print(summary_row(name, times, 52))
    tracemalloc.start()
    load(scratch / "traced")
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak traced allocations of a cold load (MiB)':<52} {traced_peak / 2**20:>8.1f}")
    print(f"{'peak RSS of this process (MiB)':<52} {peak_rss:>8.1f}")


if __name__ == "__main__":
    run_main(main)
