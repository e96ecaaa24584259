"""`python -m ecg_platform` runs the CLI."""

from ecg_platform.cli import main

main()
