"""`mlflow models serve` of a model (e.g. a pipeline) on 127.0.0.1, as tests and benchmarks run
it: ready when this yields, stopped on exit."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecg_platform.tracking.server import running_server

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def model_server(model_uri: str, log_path: Path, port: int | None = None) -> Iterator[str]:
    """Serve `model_uri` in the current environment (`--env-manager local`, one worker); yields
    its base URL, e.g. `http://127.0.0.1:5001` (POST /invocations)."""
    port = port or free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri),
        *("--env-manager", "local", "--host", HOST, "--port", str(port), "--workers", "1"),
    ]
    url = f"http://{HOST}:{port}"
    with running_server(command, log_path, url):
        yield url
