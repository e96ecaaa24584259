"""Timing shared by the benchmarks: wall and CPU seconds of repeated calls (CPU time shows the
work when other jobs share the cores and stretch the wall time)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def wall_and_cpu(action: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads of this process) of each of `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def summary_row(name: str, times: list[float], width: int) -> str:
    """`name`, then the fastest and the median of `times` and how many there are."""
    return f"{name:<{width}} {min(times):>8.3f} {statistics.median(times):>8.3f} {len(times):>4}"
