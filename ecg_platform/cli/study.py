"""The study commands: report (individual vs fine-tuned) and reproduce (the whole study)."""

from __future__ import annotations

from typing import Any

import click

from ecg_platform.cli.options import (
    EXECUTOR_OPTIONS,
    OUT_OPTION,
    TRAIN_FIELDS,
    WORKERS_OPTION,
    field_option,
    study_options,
)
from ecg_platform.cli.resolve import report_request, reproduce_request
from ecg_platform.cli.types import POSITIVE_INT
from ecg_platform.workflows.settings import stage_defaults


@click.command(context_settings={"show_default": True})
@study_options("Patients in the report.")
@click.option(
    "--parents",
    default="",
    metavar="RUN_IDS",
    help="Comma-separated run ids (a stage's parent run, a reproduce run): compare the runs "
    "nested under them. Empty: each patient's latest finished runs of the data config.",
)
@OUT_OPTION
def report(**options: Any) -> None:
    """Individual vs fine-tuned: table, statistics, paired Wilcoxon test and figures.

    Writes report.md, comparison.csv, runs.csv and the figures to --out and logs them to an
    `ecg-report` run. Patients without a run are listed as missing.
    """
    request = report_request(options)
    from ecg_platform.workflows.report import report as run_report  # after the request's checks

    click.echo(run_report(request).summary())


@click.command(context_settings={"show_default": True})
@study_options("Patients of the study.")
@click.option(
    "--epochs",
    type=POSITIVE_INT,
    default=stage_defaults("individual").epochs,
    help="Maximum epochs of each individual and finetune run.",
)
@click.option(
    "--pretrain-epochs",
    type=POSITIVE_INT,
    default=stage_defaults("pretrain").epochs,
    help="Pretraining epochs.",
)
@WORKERS_OPTION
@EXECUTOR_OPTIONS
@click.option(
    "--hparams",
    type=click.Choice(["study-table", "auto"]),
    default="study-table",
    help="Per-patient batch size, lr, sampling: the study's table, or (auto) a patient's "
    "grid-search winner where there is one.",
)
@field_option(stage_defaults("finetune"), "encoder_lr_scale", TRAIN_FIELDS["encoder_lr_scale"])
@click.option(
    "--repeats",
    type=POSITIVE_INT,
    default=1,
    help="Train every arm with this many training seeds (--seed, --seed + 1, ...; the data split "
    "stays): the report gives means and 95% intervals, and pairs the arms by seed.",
)
@OUT_OPTION
def reproduce(**options: Any) -> None:
    """The whole study: pretrain, individual for all, finetune for all, report.

    Everything nests under one `reproduce` run. Interrupted, it resumes: runs that already
    finished with the same settings are reused. Ends with where the time went.
    """
    request = reproduce_request(options)
    from ecg_platform.workflows.reproduce import reproduce as run_reproduce  # after the checks

    click.echo(run_reproduce(request).report.summary())
