"""The `ecg-platform` command line: one command per MLproject entry point, options -> typed configs.

Heavy libraries (torch, mlflow) are imported inside the commands that need them, so that
`ecg-platform data summary` starts instantly.
"""

from __future__ import annotations

import click

from ecg_platform.errors import EcgPlatformError


class _FriendlyErrors(click.Group):
    """Turns EcgPlatformError anywhere below into a one-line `Error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EcgPlatformError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecg-platform")
def cli() -> None:
    """Patient-specific ECG heartbeat classification on MIT-BIH, tracked with MLflow."""


def main() -> None:
    """Console-script entry point."""
    cli()
