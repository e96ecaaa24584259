"""The `ecg-platform` command line: one command per MLproject entry point.

Options are parsed and validated, then `resolve` turns them once into the typed request a
workflow takes. Heavy libraries (torch, mlflow) are imported inside the commands that need
them, so that `ecg-platform data summary` and `--help` start instantly.
"""

from ecg_platform.cli.app import cli, main

__all__ = ["cli", "main"]
