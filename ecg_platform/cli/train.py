"""The training commands: pretrain, individual, finetune and grid-search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import click

from ecg_platform.cli.options import (
    EXECUTOR_OPTIONS,
    WORKERS_OPTION,
    pretrained_options,
    training_options,
)
from ecg_platform.cli.resolve import executor_spec, grid_spec, pretrained_uri, stage_request
from ecg_platform.cli.types import POSITIVE_FLOAT, POSITIVE_INT, CommaList, listed
from ecg_platform.tracking.schema import PatientMode
from ecg_platform.workflows.request import RunOutcome
from ecg_platform.workflows.settings import STUDY_GRID, stage_defaults


def _echo_outcomes(outcomes: Sequence[RunOutcome]) -> None:
    for outcome in outcomes:
        click.echo(outcome.summary())


@click.command(context_settings={"show_default": True})
@training_options("pretrain")
def pretrain(**options: Any) -> None:
    """Pretrain one CNN on the pooled windows of many patients; register `ecg-pretrained`.

    The weights of the epoch with the lowest validation loss are tested on the pooled test
    windows, logged to the `ecg-pretrain` experiment and registered; the alias `champion` moves
    to them when their validation loss beats the current champion's.
    """
    request = stage_request("pretrain", options)
    from ecg_platform.workflows.pretrain import run_pretrain  # torch, MLflow: a valid request

    _echo_outcomes(run_pretrain(request))


@click.command(context_settings={"show_default": True})
@training_options("individual")
@WORKERS_OPTION
@EXECUTOR_OPTIONS
def individual(**options: Any) -> None:
    """Train one CNN per patient from scratch on that patient's windows only.

    Each run tests on the patient's own test windows, logs to `ecg-individual` and registers
    `ecg-individual-<patient>` (alias `champion` for the lowest validation loss).
    """
    request = stage_request("individual", options)
    from ecg_platform.workflows.individual import run_individual  # after the request's checks

    _echo_outcomes(run_individual(request, executor_spec(options)))


@click.command(context_settings={"show_default": True})
@training_options("finetune")
@pretrained_options()
@WORKERS_OPTION
@EXECUTOR_OPTIONS
def finetune(pretrained: str, force: bool, **options: Any) -> None:
    """Fine-tune the pretrained CNN per patient: frozen encoder, only the head is trained
    (or, with --encoder-lr-scale > 0, the whole network, the encoder at a scaled rate).

    Each run logs the exact pretrained version it started from, to `ecg-finetune`, and
    registers `ecg-finetuned-<patient>` (alias `champion` for the lowest validation loss).
    """
    request = stage_request("finetune", options)
    uri = pretrained_uri(pretrained, request.data, force)
    from ecg_platform.workflows.finetune import run_finetune  # after the request's checks

    _echo_outcomes(run_finetune(request, uri, force, executor_spec(options)))


@click.command("grid-search", context_settings={"show_default": True})
@training_options("grid-search")
@click.option(
    "--mode",
    type=click.Choice(get_args(PatientMode)),
    default="individual",
    help="individual: train from scratch; finetune: train the pretrained CNN's head.",
)
@click.option(
    "--grid-batch-sizes",
    type=CommaList(POSITIVE_INT),
    default=listed(STUDY_GRID.batch_sizes),
    help="Batch sizes to try.",
)
@click.option(
    "--grid-lrs",
    type=CommaList(POSITIVE_FLOAT),
    default=listed(STUDY_GRID.lrs),
    help="Learning rates to try.",
)
@click.option(
    "--grid-weighted",
    type=CommaList(click.BOOL),
    default=listed(STUDY_GRID.weighted_sampling),
    help="Weighted sampling settings to try.",
)
@WORKERS_OPTION
@EXECUTOR_OPTIONS
@pretrained_options()
def grid_search(mode: PatientMode, pretrained: str, force: bool, **options: Any) -> None:
    """Per patient, one nested run per setting of the grid; record the winner.

    The winner has the best validation balanced accuracy (ties: lower validation loss; test
    windows are never used). It is recorded on the patient's grid-search run, and
    `individual`/`finetune` use it by default. Settings that already finished with the same
    configuration are reused; a setting that fails is recorded FAILED and the others go on.
    """
    request = stage_request("grid-search", options, stage_defaults(mode))
    uri = pretrained_uri(pretrained, request.data, force) if mode == "finetune" else pretrained
    from ecg_platform.workflows.grid_search import run_grid_search  # after the request's checks

    grid, workers = grid_spec(options), executor_spec(options)
    for found in run_grid_search(request, grid, mode, workers, uri, force):
        click.echo(found.summary())
