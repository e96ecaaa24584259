"""Beat extraction speed: every record of the data directory, cold (empty cache) and warm.

Run from the repository root: `.venv/bin/python benchmarks/bench_beats.py [--repeats N]`.
Goal (the standard-protocols issue): 48 records in <= 3 s cold and <= 0.3 s warm.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from entry import run_main
from timing import wall_and_cpu

from ecg_platform.data.beat_config import beat_config
from ecg_platform.data.beat_dataset import load_beat_study, load_beats
from ecg_platform.data.mitdb import list_records, resolve_data_dir


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="bench-beats-") as scratch:
        _measure(data_dir, Path(scratch), args.repeats)


def _measure(data_dir: Path, scratch: Path, repeats: int) -> None:
    records, config = list_records(data_dir), beat_config("patient-specific")
    fresh = iter(range(10**6))

    started, started_cpu = time.perf_counter(), time.process_time()
    import scipy.signal  # noqa: F401  (the build path's libraries, imported once)
    import wfdb  # noqa: F401

    import_seconds = [time.perf_counter() - started], [time.process_time() - started_cpu]
    warm_cache = scratch / "warm"
    beats = load_beats(data_dir, records, config.extraction, warm_cache)
    n_beats = sum(record.n_beats for record in beats.values())
    print(f"{len(records)} records, {n_beats} beats kept, data from {data_dir}")
    print(f"{'measurement':<52} {'min s':>8} {'median s':>8} {'cpu s':>8} {'runs':>4}")
    rows = {
        "import scipy.signal + wfdb (first time)": import_seconds,
        "cold load_beats (empty cache), libraries imported": wall_and_cpu(
            lambda: load_beats(
                data_dir, records, config.extraction, scratch / f"cold-{next(fresh)}"
            ),
            repeats,
        ),
        "warm load_beats (cache hit)": wall_and_cpu(
            lambda: load_beats(data_dir, records, config.extraction, warm_cache), 5
        ),
        "warm load_beat_study patient-specific (+ splits)": wall_and_cpu(
            lambda: load_beat_study(data_dir, config, warm_cache), 5
        ),
        "warm load_beat_study inter-patient (+ splits)": wall_and_cpu(
            lambda: load_beat_study(data_dir, beat_config("inter-patient"), warm_cache), 5
        ),
    }
    for name, (wall, cpu) in rows.items():
        print(
            f"{name:<52} {min(wall):>8.3f} {statistics.median(wall):>8.3f} "
            f"{statistics.median(cpu):>8.3f} {len(wall):>4}"
        )


if __name__ == "__main__":
    run_main(main)
