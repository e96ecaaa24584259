"""A team tracking server in one command: PostgreSQL for runs and the registry, artifacts proxied
by `mlflow server --serve-artifacts`, everything in one folder.

SQLite stays the embedded default; a lab that shares results, or runs workers on several
machines, points `MLFLOW_TRACKING_URI` at this server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from ecg_platform.errors import EcgPlatformError

POSTGRES_USER = "postgres"  # the superuser initdb creates; also the OS user when run as root
STARTUP_TIMEOUT_S = 60.0
# MLflow's server runs GenAI jobs (prompt optimisation, scorers) in eight more Python processes,
# ~1.9 GB and ~30 s of CPU to start here, that training never uses: off unless the user's
# environment turns them on.
SERVER_ENV_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its state and where it listens."""

    root: Path = Path("tracking-server")
    host: str = "127.0.0.1"
    port: int = 5000
    db_port: int = 5433
    database: str = "mlflow"
    workers: int = 2

    @property
    def url(self) -> str:
        """What clients set MLFLOW_TRACKING_URI to."""
        return f"http://{self.host}:{self.port}"

    @property
    def backend_uri(self) -> str:
        """The SQLAlchemy URI of the PostgreSQL database (psycopg 3 driver)."""
        return f"postgresql+psycopg://{POSTGRES_USER}@{self.host}:{self.db_port}/{self.database}"


@contextmanager
def postgres(config: ServerConfig) -> Iterator[str]:
    """A PostgreSQL cluster in `config.root/pgdata` (created on first use), running for the
    duration; yields the backend URI. Stops it fast on exit, committed data kept."""
    data, run = config.root / "pgdata", config.root / "pgrun"  # run: sockets and the log
    _prepare_dirs(run)
    if not (data / "PG_VERSION").is_file():
        _prepare_dirs(data)
        _as_postgres([_pg_binary("initdb"), "-D", str(data), "-A", "trust", "-U", POSTGRES_USER])
    sockets = run.resolve()
    options = f"-p {config.db_port} -k {sockets} -c listen_addresses={config.host}"
    pg_ctl = [_pg_binary("pg_ctl"), "-D", str(data)]
    timeout = str(int(STARTUP_TIMEOUT_S))
    _as_postgres(
        [*pg_ctl, "-w", "-t", timeout, "-l", str(run / "postgres.log"), "-o", options, "start"]
    )
    try:
        _create_database(config, sockets)
        yield config.backend_uri
    finally:
        _as_postgres([*pg_ctl, "-m", "fast", "-w", "stop"])


@contextmanager
def tracking_server(config: ServerConfig, backend_uri: str) -> Iterator[subprocess.Popen]:
    """`mlflow server` on `backend_uri` with proxied artifacts in `config.root/artifacts`,
    ready (answering /health) when this yields; terminated on exit."""
    artifacts = (config.root / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--host", config.host, "--port", str(config.port), "--workers", str(config.workers)),
        *("--backend-store-uri", backend_uri),
        *("--serve-artifacts", "--artifacts-destination", str(artifacts)),
    ]
    log_path = config.root / "mlflow-server.log"
    with running_server(command, log_path, config.url, SERVER_ENV_DEFAULTS) as process:
        yield process


@contextmanager
def running_server(
    command: list[str], log_path: Path, url: str, env_defaults: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """`command` started with its output appended to `log_path`, ready (answering /health at
    `url`) when this yields; terminated on exit (killed if it lingers over 30 s). Its
    environment is this one over `env_defaults`; the running interpreter's folder leads PATH:
    MLflow starts helpers (uvicorn) by name."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**(env_defaults or {}), **os.environ, "PATH": path}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_healthy(url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _pg_binary(name: str) -> str:
    """A PostgreSQL program: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise EcgPlatformError(
            f"PostgreSQL's {name} not found: install PostgreSQL (Debian: apt-get install "
            "postgresql) or use the embedded SQLite store"
        )
    return found


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _prepare_dirs(*folders: Path) -> None:
    """Create the folders; as root, hand them to the postgres user (initdb refuses root)."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _running_as_root():
            shutil.chown(folder, user=POSTGRES_USER)


def _as_postgres(command: list[str]) -> None:
    """Run a PostgreSQL program, as the postgres user when we are root; one line on failure."""
    program = Path(command[0]).name
    if _running_as_root():
        command = ["runuser", "-u", POSTGRES_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        hint = " (as root, the server folder must be reachable by the postgres user)"
        raise EcgPlatformError(
            f"{program} failed: {detail[-1] if detail else result.returncode}"
            f"{hint if _running_as_root() else ''}"
        )


def _create_database(config: ServerConfig, sockets: Path) -> None:
    """Create the MLflow database unless it exists (psycopg: no psql client needed)."""
    import psycopg

    connection = f"host={sockets} port={config.db_port} user={POSTGRES_USER}"
    with psycopg.connect(f"{connection} dbname=postgres", autocommit=True) as db:
        exists = db.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (config.database,)
        ).fetchone()
        if not exists:
            db.execute(f'CREATE DATABASE "{config.database}"')


def wait_until_healthy(url: str, process: subprocess.Popen) -> None:
    """Return once `url`/health answers; one line when the process dies or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EcgPlatformError(f"mlflow server exited with code {process.returncode}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise EcgPlatformError(f"mlflow server did not answer at {url} in {STARTUP_TIMEOUT_S:.0f} s")
