"""`ecg-platform server`: a team tracking server (PostgreSQL, proxied artifacts), one command."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from ecg_platform.cli.types import POSITIVE_INT

_DEFAULT_ROOT = "tracking-server"


@click.command(context_settings={"show_default": True})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=_DEFAULT_ROOT,
    help="Folder of the server's state: pgdata/ (PostgreSQL), artifacts/, logs.",
)
@click.option("--host", default="127.0.0.1", help="Address both servers listen on.")
@click.option("--port", type=POSITIVE_INT, default=5000, help="Port of the MLflow server.")
@click.option("--db-port", type=POSITIVE_INT, default=5433, help="Port of PostgreSQL.")
@click.option("--workers", type=POSITIVE_INT, default=2, help="MLflow server worker processes.")
def server(root: Path, host: str, port: int, db_port: int, workers: int) -> None:
    """Run a tracking server for a team: `mlflow server` on PostgreSQL (created in --root on
    first use, kept between starts) with artifacts proxied over HTTP. Point every command at
    it with the MLFLOW_TRACKING_URI it prints; Ctrl-C or SIGTERM stops both servers, data
    kept."""
    from ecg_platform.tracking.server import ServerConfig, postgres, tracking_server

    signal.signal(signal.SIGTERM, _stop)  # a service manager's stop: the same clean shutdown

    config = ServerConfig(root, host, port, db_port, workers=workers)
    with postgres(config) as backend, tracking_server(config, backend) as process:
        click.echo(
            f"tracking server at {config.url} (PostgreSQL on {host}:{db_port}, artifacts in "
            f"{(root / 'artifacts').resolve()})\nexport MLFLOW_TRACKING_URI={config.url}"
        )
        try:
            process.wait()
        except KeyboardInterrupt:
            click.echo("stopping the tracking server and PostgreSQL")


def _stop(signum: int, _frame: Any) -> None:
    """SIGTERM as Ctrl-C: unwinds through the servers' context managers, which stop them."""
    raise KeyboardInterrupt(signal.Signals(signum).name)
