"""Setting up a worker process (local pool or Ray) and catching what it logs.

A worker logs to the parent's tracking store with its share of the cores, draws no progress
bars, leaves Ctrl-C to the runs, dies with its parent (local pool), and sends its warnings and
tracebacks back with each job's result, so that they reach the parent's log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ecg_platform.tracking.worker_runs import use_tracking_uri

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


def prepare_worker(uri: str, threads: int, parent_pid: int | None = None) -> None:
    """Worker set-up: the parent's store, its share of the cores, no bars, Ctrl-C left to runs;
    with `parent_pid`, death with that parent."""
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a running run still ends KILLED (stage_run)
    if not isinstance(sys.stderr, _NotATerminal):
        sys.stderr = _NotATerminal(sys.stderr)
    use_tracking_uri(uri)
    torch.set_num_threads(threads)


def prepare_local_worker(
    uri: str, threads: int, parent_pid: int, cwd: str, environ: dict[str, str]
) -> None:
    """`prepare_worker` for a worker forked by the fork server, which started with the command's
    first pool: take the command's working directory and environment as they are now."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    prepare_worker(uri, threads, parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """End this process when the command `parent_pid` ends, so that a `kill -9` of a command
    leaves no worker finishing jobs nobody waits for; the runs such a worker leaves RUNNING are
    ended by the next command (`fail_runs_of_dead_processes`). A daemon thread waits on the
    command's pidfd (Linux >= 5.3): the kernel's `PR_SET_PDEATHSIG` would watch the fork server
    instead, which lives as long as its workers do. Elsewhere a no-op."""
    if not hasattr(os, "pidfd_open"):
        return
    try:
        pidfd = os.pidfd_open(parent_pid)
    except ProcessLookupError:  # the command died before this worker started
        os._exit(1)
    except OSError as error:  # a kernel without pidfds
        log.warning("cannot watch the command (pidfd_open: %s); workers may outlive it", error)
        return
    threading.Thread(
        target=_exit_when_ended, args=(pidfd,), name="die-with-parent", daemon=True
    ).start()


def _exit_when_ended(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable once the process has ended
    os._exit(1)


@contextlib.contextmanager
def captured_log() -> Iterator[list[str]]:
    """Collect the warnings (`warnings.warn` too) and errors logged meanwhile, tracebacks
    included, as formatted lines; a worker returns them for the parent to log."""
    lines: list[str] = []
    handler = _ListHandler(lines)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield lines
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _NotATerminal:
    """A stream that says it is not a terminal, so workers draw no bars over the parent's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
