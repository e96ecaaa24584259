"""What the terminal shows while jobs run: one line per finished job with an ETA, and a bar when
stderr is a terminal. Lines go through tqdm so that they never tear a bar."""

from __future__ import annotations

import math
import sys
import time


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

    def finished(self, name: str, error: str | None, seconds: float) -> None:
        """Count one job and say how it ended."""
        self.done += 1
        self.bar.update()
        status = "failed: " + error if error else "done"
        eta = _eta(self.done, self.total, time.perf_counter() - self.started)
        announce(f"[{self.label}] {self.done}/{self.total} {name} {status} ({seconds:.0f} s){eta}")

    def close(self) -> None:
        """Remove the bar."""
        self.bar.close()
