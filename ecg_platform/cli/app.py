"""The `ecg-platform` group: one-line errors, platform logs on stderr, and its commands."""

from __future__ import annotations

import logging
import os

import click

from ecg_platform.cli.data import data
from ecg_platform.cli.predict import pipeline, predict
from ecg_platform.cli.server import server
from ecg_platform.cli.study import report, reproduce
from ecg_platform.cli.train import finetune, grid_search, individual, pretrain
from ecg_platform.errors import EcgPlatformError


class _FriendlyErrors(click.Group):
    """Turns EcgPlatformError anywhere below, and a bad option value, into one `Error: ...`
    line: a platform error exits 1, a bad value 2 (before any data is read or run created)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EcgPlatformError as exc:
            raise click.ClickException(str(exc)) from None
        except click.BadParameter as exc:
            error = click.ClickException(exc.format_message())
            error.exit_code = exc.exit_code
            raise error from None


class _EchoHandler(logging.Handler):
    """Log records of `ecg_platform` as plain lines on the current stderr (e.g. epoch lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _show_platform_logs() -> None:
    """INFO and above of `ecg_platform` on stderr, once per process. Worker processes do not
    run this, so their per-epoch lines stay quiet behind the parent's progress display."""
    logger = logging.getLogger("ecg_platform")
    if not any(isinstance(handler, _EchoHandler) for handler in logger.handlers):
        logger.addHandler(_EchoHandler())
    logger.setLevel(logging.INFO)


@click.group(cls=_FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecg-platform")
def cli() -> None:
    """Patient-specific ECG heartbeat classification on MIT-BIH, tracked with MLflow."""
    _show_platform_logs()


for command in (
    data,
    pretrain,
    individual,
    finetune,
    grid_search,
    report,
    reproduce,
    predict,
    pipeline,
    server,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point. The platform's lines are printed by its own handler only:
    MLflow installs a root handler when it loads a pt2 model, which would print each twice.
    MLflow's bars for artifact downloads stay off (unless asked for): the commands show their
    own progress, and a model's few files only interleave bars with the one-line errors."""
    logging.getLogger("ecg_platform").propagate = False
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    cli()
