"""The `ecg-platform` command line: one command per MLproject entry point, options -> typed configs.

Heavy libraries (torch, mlflow) are imported inside the commands that need them, so that
`ecg-platform data summary` starts instantly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import click

from ecg_platform.data.config import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    DATA_PATHS,
    DEFAULT_SEED,
    data_config,
    resolve_cache_dir,
)
from ecg_platform.data.download import DEFAULT_TIMEOUT_S
from ecg_platform.engine.config import Optimizer, Scheduler, TrainConfig
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import TRACKING, PatientMode, Stage
from ecg_platform.workflows.request import PatientOverrides, RunOutcome, StageRequest
from ecg_platform.workflows.settings import (
    FINETUNE_DEFAULTS,
    PATIENT_DEFAULTS,
    PRETRAIN_DEFAULTS,
    REPORT_DIR,
    STUDY_GRID,
    GridSpec,
    stage_defaults,
)

if TYPE_CHECKING:
    from ecg_platform.data.dataset import StudyData


class _FriendlyErrors(click.Group):
    """Turns EcgPlatformError anywhere below into a one-line `Error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EcgPlatformError as exc:
            raise click.ClickException(str(exc)) from None


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


AUTO = "auto"
_POSITIVE_INT = click.IntRange(min=1)
_POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)
_Decorated = TypeVar("_Decorated", bound=Callable[..., Any])


class _OrAuto(click.ParamType):
    """A value of `base`, or `auto` (None): the patient's grid-search winner, else the study's."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name}|{AUTO}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == AUTO:
            return None
        return self.base.convert(value, param, ctx)


def _empty_as_none(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return value or None


@cli.group()
def data() -> None:
    """Inspect, export or download the MIT-BIH data (fast: no torch, no MLflow)."""


def _data_source_options(command: _Decorated) -> _Decorated:
    """--data-dir, --cache-dir and --preset, shared by the `data` commands."""
    options = [
        click.option(
            "--data-dir",
            callback=_empty_as_none,
            metavar="DIR",
            help=f"MIT-BIH directory (WFDB or Kaggle CSV) [default: ${DATA_DIR_ENV}, else "
            "data/mitdb or ../shared/data/mitdb].",
        ),
        click.option(
            "--cache-dir",
            callback=_empty_as_none,
            metavar="DIR",
            help=f"Preprocessed-array cache [default: ${CACHE_DIR_ENV}, else .cache].",
        ),
        click.option("--preset", default="paper", show_default=True, help="Data protocol."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _study(data_dir: str | None, cache_dir: str | None, preset: str) -> StudyData:
    """Every record of the data directory, preprocessed (cached), for the `data` commands."""
    from ecg_platform.data.dataset import load_study
    from ecg_platform.data.mitdb import resolve_data_dir

    config = data_config(preset)
    return load_study(resolve_data_dir(data_dir), config, cache_dir=resolve_cache_dir(cache_dir))


@data.command()
@_data_source_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def summary(data_dir: str | None, cache_dir: str | None, preset: str, as_json: bool) -> None:
    """Per record: kept windows, normal, abnormal, abnormal share, selected; totals of the
    selected records."""
    import json

    from ecg_platform.data.summary import format_table, study_summary

    result = study_summary(_study(data_dir, cache_dir, preset))
    click.echo(json.dumps(result) if as_json else format_table(result))


@data.command()
@_data_source_options
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .npz to write.",
)
@click.option(
    "--records",
    default="all",
    show_default=True,
    help="Selected records to export: all, one id (105) or a list (105,106).",
)
def export(
    data_dir: str | None, cache_dir: str | None, preset: str, out: Path, records: str
) -> None:
    """Write x (n, 128) float32, y, record and split (train/val/test) of each window to an .npz."""
    from ecg_platform.data.export import export_windows

    study = _study(data_dir, cache_dir, preset)
    chosen = study.select(records)
    n_windows = export_windows(study, chosen, out)
    click.echo(f"wrote {n_windows} windows of {len(chosen)} record(s) to {out}")


@data.command()
@click.option(
    "--dest",
    default=str(DATA_PATHS.data_dir_candidates[0]),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to download into (the first default data location).",
)
@click.option(
    "--timeout", default=DEFAULT_TIMEOUT_S, show_default=True, help="Network timeout in seconds."
)
def download(dest: Path, timeout: float) -> None:
    """Download the complete MIT-BIH Arrhythmia Database (48 records) from PhysioNet."""
    from ecg_platform.data.download import download_mitdb

    click.echo(f"downloaded mitdb into {download_mitdb(dest, timeout)}")


ENCODER_LR_SCALE_OPTION = click.option(
    "--encoder-lr-scale",
    type=click.FloatRange(min=0),
    default=FINETUNE_DEFAULTS.encoder_lr_scale,
    help="The pretrained encoder's learning rate as a multiple of --lr. 0: frozen (the study; "
    "its features are computed once and only the head trains); e.g. 0.1: the whole network "
    "trains, the encoder ten times slower than the head.",
)


def _training_options(stage: Stage) -> Callable[[_Decorated], _Decorated]:
    """The options shared by the training commands, with `stage`'s defaults (the grid search
    has no batch size, lr or sampling options: its grid sets them)."""
    pretrain, grid = stage == "pretrain", stage == "grid-search"
    defaults, model = stage_defaults(stage), ModelConfig()

    def per_patient(kind: click.ParamType, default: Any) -> dict[str, Any]:
        if pretrain:
            return {"type": kind, "default": default}
        return {"type": _OrAuto(kind), "default": AUTO}

    patient_help = (
        "Patients whose train/validation windows are pooled: all, one id (105) or a list (105,106)."
        if pretrain
        else "Patients to run, one run each: one id (105), a list (105,106) or all (a parent run "
        "with one nested run per patient)."
    )
    auto_note = "" if pretrain else f" {AUTO}: the patient's grid-search winner, else the study's."
    options = [
        click.option(
            "--patient",
            "patients",
            required=not pretrain,
            default="all" if pretrain else None,
            help=patient_help,
        ),
        click.option(
            "--epochs",
            type=_POSITIVE_INT,
            default=defaults.epochs,
            help="Maximum number of epochs.",
        ),
        *(
            []
            if grid
            else [
                click.option(
                    "--batch-size",
                    **per_patient(_POSITIVE_INT, defaults.batch_size),
                    help="Mini-batch size." + auto_note,
                ),
                click.option(
                    "--lr",
                    **per_patient(_POSITIVE_FLOAT, defaults.lr),
                    help="Initial learning rate." + auto_note,
                ),
            ]
        ),
        click.option(
            "--optimizer",
            type=click.Choice(get_args(Optimizer)),
            default=defaults.optimizer,
            help="Optimiser.",
        ),
        click.option(
            "--scheduler",
            type=click.Choice(get_args(Scheduler)),
            default=defaults.scheduler,
            help="Learning-rate schedule: reduce-on-plateau of validation loss, cyclic, "
            "cosine, or constant.",
        ),
        click.option(
            "--weight-decay",
            type=click.FloatRange(min=0),
            default=defaults.weight_decay,
            help="L2 weight decay.",
        ),
        *(
            []
            if grid
            else [
                click.option(
                    "--weighted-sampling",
                    **per_patient(click.BOOL, defaults.weighted_sampling),
                    help="true: oversample so both classes are drawn equally often." + auto_note,
                )
            ]
        ),
        click.option(
            "--early-stopping",
            type=click.BOOL,
            default=defaults.early_stopping,
            help=f"true: stop when validation loss has not improved for "
            f"{defaults.early_stopping_patience} epochs (not before epoch "
            f"{defaults.early_stopping_min_epochs}).",
        ),
        click.option(
            "--seed",
            type=int,
            default=defaults.seed,
            help="Seeds the splits, initialisation and sampling (part of the data config).",
        ),
        click.option(
            "--num-blocks",
            type=_POSITIVE_INT,
            default=model.num_blocks,
            help="Residual blocks of the CNN.",
        ),
        click.option(
            "--block-channels",
            type=_POSITIVE_INT,
            default=model.block_channels,
            help="Channels of every convolution.",
        ),
        click.option(
            "--kernel-size",
            type=_POSITIVE_INT,
            default=model.kernel_size,
            help="Kernel size of the blocks' convolutions.",
        ),
    ]

    def decorate(command: _Decorated) -> _Decorated:
        for option in reversed(options):
            command = option(command)
        return _data_source_options(command)

    return decorate


# TrainConfig fields set by options of the same name (those a command has)
TRAIN_OPTIONS = (
    "epochs",
    "optimizer",
    "scheduler",
    "weight_decay",
    "early_stopping",
    "seed",
    "encoder_lr_scale",
)


def _stage_request(
    stage: Stage, options: dict[str, Any], defaults: TrainConfig | None = None
) -> StageRequest:
    """Typed configs from the shared training options (over `defaults`, else the stage's)."""
    overrides = PatientOverrides(
        batch_size=options.get("batch_size"),
        lr=options.get("lr"),
        weighted_sampling=options.get("weighted_sampling"),
    )
    train = (defaults or stage_defaults(stage)).replace(
        **{name: options[name] for name in TRAIN_OPTIONS if name in options},
        **overrides.given(),
    )
    model = ModelConfig(
        num_blocks=options["num_blocks"],
        block_channels=options["block_channels"],
        kernel_size=options["kernel_size"],
    )
    return StageRequest(
        stage=stage,
        data_dir=options["data_dir"],
        cache_dir=options["cache_dir"],
        data=data_config(options["preset"], options["seed"]),
        patients=options["patients"],
        model=model,
        train=train,
        overrides=overrides,
    )


def _echo_outcomes(outcomes: Sequence[RunOutcome]) -> None:
    for outcome in outcomes:
        click.echo(outcome.summary())


@cli.command(context_settings={"show_default": True})
@_training_options("pretrain")
def pretrain(**options: Any) -> None:
    """Pretrain one CNN on the pooled windows of many patients; register `ecg-pretrained`.

    The weights of the epoch with the lowest validation loss are tested on the pooled test
    windows, logged to the `ecg-pretrain` experiment and registered; the alias `champion` moves
    to them when their validation loss beats the current champion's.
    """
    from ecg_platform.workflows.pretrain import run_pretrain

    _echo_outcomes(run_pretrain(_stage_request("pretrain", options)))


_WORKERS_OPTION = click.option(
    "--workers",
    type=_OrAuto(_POSITIVE_INT),
    default=AUTO,
    help="Runs trained at once, each in its own process. auto: one per CPU core.",
)


@cli.command(context_settings={"show_default": True})
@_training_options("individual")
@_WORKERS_OPTION
def individual(workers: int | None, **options: Any) -> None:
    """Train one CNN per patient from scratch on that patient's windows only.

    Each run tests on the patient's own test windows, logs to `ecg-individual` and registers
    `ecg-individual-<patient>` (alias `champion` for the lowest validation loss).
    """
    from ecg_platform.workflows.executor import cpu_cores
    from ecg_platform.workflows.individual import run_individual

    request = _stage_request("individual", options)
    _echo_outcomes(run_individual(request, workers or cpu_cores()))


def _pretrained_options(command: _Decorated) -> _Decorated:
    """--pretrained and --force, for the commands that fine-tune."""
    options = [
        click.option(
            "--pretrained",
            default=TRACKING.default_pretrained_uri,
            show_default=True,
            metavar="URI",
            help="Starting weights: any MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION,"
            " runs:/ID/model) or a checkpoint file (runs:/ID/checkpoint/best.pt).",
        ),
        click.option(
            "--force",
            type=click.BOOL,
            is_flag=False,
            flag_value=True,
            default=False,
            help="Use the pretrained model even if its data config differs.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command(context_settings={"show_default": True})
@_training_options("finetune")
@ENCODER_LR_SCALE_OPTION
@_pretrained_options
@_WORKERS_OPTION
def finetune(pretrained: str, force: bool, workers: int | None, **options: Any) -> None:
    """Fine-tune the pretrained CNN per patient: frozen encoder, only the head is trained
    (or, with --encoder-lr-scale > 0, the whole network, the encoder at a scaled rate).

    Each run logs the exact pretrained version it started from, to `ecg-finetune`, and
    registers `ecg-finetuned-<patient>` (alias `champion` for the lowest validation loss).
    """
    from ecg_platform.workflows.executor import cpu_cores
    from ecg_platform.workflows.finetune import run_finetune

    request = _stage_request("finetune", options)
    _echo_outcomes(run_finetune(request, pretrained, force, workers or cpu_cores()))


class _CommaList(click.ParamType):
    """Comma-separated values of `base`, e.g. `4,16,32`, as a tuple."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name},..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        if not items:
            self.fail("give at least one value", param, ctx)
        return tuple(self.base.convert(item, param, ctx) for item in items)


def _listed(values: tuple[Any, ...]) -> str:
    return ",".join(
        str(value).lower() if isinstance(value, bool) else str(value) for value in values
    )


_SEED_OPTION = click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    help="The runs' seed: of the splits (part of the data config), initialisation, sampling.",
)
_OUT_OPTION = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=str(REPORT_DIR),
    help="Folder for report.md, the CSVs and the figures.",
)


@cli.command("grid-search", context_settings={"show_default": True})
@_training_options("grid-search")
@click.option(
    "--mode",
    type=click.Choice(get_args(PatientMode)),
    default="individual",
    help="individual: train from scratch; finetune: train the pretrained CNN's head.",
)
@click.option(
    "--grid-batch-sizes",
    type=_CommaList(_POSITIVE_INT),
    default=_listed(STUDY_GRID.batch_sizes),
    help="Batch sizes to try.",
)
@click.option(
    "--grid-lrs",
    type=_CommaList(_POSITIVE_FLOAT),
    default=_listed(STUDY_GRID.lrs),
    help="Learning rates to try.",
)
@click.option(
    "--grid-weighted",
    type=_CommaList(click.BOOL),
    default=_listed(STUDY_GRID.weighted_sampling),
    help="Weighted sampling settings to try.",
)
@_WORKERS_OPTION
@_pretrained_options
def grid_search(
    mode: PatientMode,
    grid_batch_sizes: tuple[int, ...],
    grid_lrs: tuple[float, ...],
    grid_weighted: tuple[bool, ...],
    workers: int | None,
    pretrained: str,
    force: bool,
    **options: Any,
) -> None:
    """Per patient, one nested run per setting of the grid; record the winner.

    The winner has the best validation balanced accuracy (ties: lower validation loss; test
    windows are never used). It is recorded on the patient's grid-search run, and
    `individual`/`finetune` use it by default. Settings that already finished with the same
    configuration are reused; a setting that fails is recorded FAILED and the others go on.
    """
    from ecg_platform.workflows.executor import cpu_cores
    from ecg_platform.workflows.grid_search import run_grid_search

    request = _stage_request("grid-search", options, stage_defaults(mode))
    grid = GridSpec(grid_batch_sizes, grid_lrs, grid_weighted)
    searched = run_grid_search(request, grid, mode, workers or cpu_cores(), pretrained, force)
    for found in searched:
        click.echo(found.summary())


@cli.command(context_settings={"show_default": True})
@_data_source_options
@_SEED_OPTION
@click.option("--patient", "patients", default="all", help="Patients in the report.")
@click.option(
    "--parents",
    default="",
    metavar="RUN_IDS",
    help="Comma-separated run ids (a stage's parent run, a reproduce run): compare the runs "
    "nested under them. Empty: each patient's latest finished runs of the data config.",
)
@_OUT_OPTION
def report(
    data_dir: str | None,
    cache_dir: str | None,
    preset: str,
    seed: int,
    patients: str,
    parents: str,
    out: Path,
) -> None:
    """Individual vs fine-tuned: table, statistics, paired Wilcoxon test and figures.

    Writes report.md, comparison.csv, runs.csv and the figures to --out and logs them to an
    `ecg-report` run. Patients without a run are listed as missing.
    """
    from ecg_platform.workflows.report import ReportRequest
    from ecg_platform.workflows.report import report as run_report

    request = ReportRequest(
        data_dir,
        data_config(preset, seed),
        patients,
        tuple(parent.strip() for parent in parents.split(",") if parent.strip()),
        out,
        cache_dir,
    )
    click.echo(run_report(request).summary())


@cli.command(context_settings={"show_default": True})
@_data_source_options
@_SEED_OPTION
@click.option("--patient", "patients", default="all", help="Patients of the study.")
@click.option(
    "--epochs",
    type=_POSITIVE_INT,
    default=PATIENT_DEFAULTS.epochs,
    help="Maximum epochs of each individual and finetune run.",
)
@click.option(
    "--pretrain-epochs",
    type=_POSITIVE_INT,
    default=PRETRAIN_DEFAULTS.epochs,
    help="Pretraining epochs.",
)
@_WORKERS_OPTION
@click.option(
    "--hparams",
    type=click.Choice(["study-table", "auto"]),
    default="study-table",
    help="Per-patient batch size, lr, sampling: the study's table, or (auto) a patient's "
    "grid-search winner where there is one.",
)
@ENCODER_LR_SCALE_OPTION
@_OUT_OPTION
def reproduce(
    data_dir: str | None,
    cache_dir: str | None,
    preset: str,
    seed: int,
    patients: str,
    epochs: int,
    pretrain_epochs: int,
    workers: int | None,
    hparams: str,
    encoder_lr_scale: float,
    out: Path,
) -> None:
    """The whole study: pretrain, individual for all, finetune for all, report.

    Everything nests under one `reproduce` run. Interrupted, it resumes: runs that already
    finished with the same settings are reused. Ends with where the time went.
    """
    from ecg_platform.workflows.executor import cpu_cores
    from ecg_platform.workflows.reproduce import ReproduceRequest
    from ecg_platform.workflows.reproduce import reproduce as run_reproduce

    request = ReproduceRequest(
        data_dir,
        data_config(preset, seed),
        patients,
        cache_dir,
        pretrain=PRETRAIN_DEFAULTS.replace(epochs=pretrain_epochs, seed=seed),
        patient=PATIENT_DEFAULTS.replace(epochs=epochs, seed=seed),
        finetune=FINETUNE_DEFAULTS.replace(
            epochs=epochs, seed=seed, encoder_lr_scale=encoder_lr_scale
        ),
        workers=workers or cpu_cores(),
        grid_winners=hparams == "auto",
        out_dir=out,
    )
    click.echo(run_reproduce(request).report.summary())


def main() -> None:
    """Console-script entry point."""
    cli()
