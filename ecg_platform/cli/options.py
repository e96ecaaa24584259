"""Option factories. The model and training options are generated from the typed configs'
fields (name, type, default); only their help text and numeric range are written here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import click

from ecg_platform.cli.types import (
    AUTO,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    SEED,
    OrAuto,
    Patients,
    empty_as_none,
)
from ecg_platform.data.config import CACHE_DIR_ENV, DATA_DIR_ENV, DATA_PATHS, DEFAULT_SEED
from ecg_platform.data.labels import LABEL_SETS
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import TRACKING, Stage
from ecg_platform.workflows.executor_spec import BACKENDS
from ecg_platform.workflows.request import PER_PATIENT_FIELDS
from ecg_platform.workflows.settings import (
    BEAT_PRETRAIN_AUGMENT,
    INTER_PATIENT_AVERAGED_EPOCHS,
    REPORT_DIR,
    stage_defaults,
)

Decorated = TypeVar("Decorated", bound=Callable[..., Any])
Decorator = Callable[[Decorated], Decorated]


@dataclass(frozen=True)
class FieldOption:
    """How one typed-config field appears on the command line (`--field-name`)."""

    help: str  # may name the config's fields in braces, e.g. {early_stopping_patience}
    type: click.ParamType | None = None  # None: the field's Literal choices, or a bool
    preset_default: str | None = None  # its default depends on the preset: what `auto` gives


TRAIN_FIELDS: dict[str, FieldOption] = {
    "epochs": FieldOption("Maximum number of epochs.", POSITIVE_INT),
    "batch_size": FieldOption("Mini-batch size.", POSITIVE_INT),
    "lr": FieldOption("Initial learning rate.", POSITIVE_FLOAT),
    "optimizer": FieldOption("Optimiser."),
    "scheduler": FieldOption(
        "Learning-rate schedule: reduce-on-plateau of validation loss, cyclic, cosine, or constant."
    ),
    "weight_decay": FieldOption("L2 weight decay.", NON_NEGATIVE_FLOAT),
    "weighted_sampling": FieldOption("true: oversample so both classes are drawn equally often."),
    "augment": FieldOption(
        "Strength s of the windows' augmentation while training: each window's gain drawn from "
        "1 +- s, its offset from +- s/3, white noise of s/10 (0: none).",
        NON_NEGATIVE_FLOAT,
        preset_default=f"{BEAT_PRETRAIN_AUGMENT:g} when pretraining a beat preset, else 0",
    ),
    "average_last": FieldOption(
        "Keep the mean of the last N epochs' weights (all of them if fewer) instead of the "
        "lowest validation loss's epoch; needs early stopping off (0: the best epoch's).",
        NON_NEGATIVE_INT,
        preset_default=(
            f"{INTER_PATIENT_AVERAGED_EPOCHS} when pretraining the inter-patient preset, else 0"
        ),
    ),
    "early_stopping": FieldOption(
        "true: stop when validation loss has not improved for {early_stopping_patience} epochs "
        "(not before epoch {early_stopping_min_epochs})."
    ),
    "seed": FieldOption(
        "Seeds the splits, initialisation and sampling (part of the data config).", SEED
    ),
    "encoder_lr_scale": FieldOption(
        "The pretrained encoder's learning rate as a multiple of --lr. 0: frozen (the study; its "
        "features are computed once and only the head trains); e.g. 0.1: the whole network "
        "trains, the encoder ten times slower than the head.",
        NON_NEGATIVE_FLOAT,
    ),
}
MODEL_FIELDS: dict[str, FieldOption] = {
    "num_blocks": FieldOption("Residual blocks of the CNN.", POSITIVE_INT),
    "block_channels": FieldOption("Channels of every convolution.", POSITIVE_INT),
    "kernel_size": FieldOption("Kernel size of the blocks' convolutions.", POSITIVE_INT),
}
# Training fields a command has no option for: the grid sets the per-patient ones, only
# fine-tuning has a pretrained encoder to scale, and only pretraining augments and averages
# weights (measured there; the patient stages stop early).
PRETRAINING_ONLY = frozenset({"augment", "average_last"})
NOT_OPTIONS: dict[Stage, frozenset[str]] = {
    "pretrain": frozenset({"encoder_lr_scale"}),
    "individual": PRETRAINING_ONLY | {"encoder_lr_scale"},
    "finetune": PRETRAINING_ONLY,
    "grid-search": PER_PATIENT_FIELDS | PRETRAINING_ONLY | {"encoder_lr_scale"},
}
AUTO_NOTE = f" {AUTO}: the patient's grid-search winner, else the study's."


def stacked(options: Sequence[Decorator]) -> Decorator:
    """One decorator applying `options` so that they list in the given order."""

    def decorate(command: Decorated) -> Decorated:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def field_option(config: Any, name: str, spec: FieldOption, auto: bool = False) -> Decorator:
    """`--name` typed and defaulted from `config`'s field (or `auto`, chosen per patient)."""
    kind = spec.type or _annotation_type(get_type_hints(type(config))[name])
    help_text = spec.help.format(**dataclasses.asdict(config))
    flag = "--" + name.replace("_", "-")
    if auto:
        return click.option(flag, type=OrAuto(kind), default=AUTO, help=help_text + AUTO_NOTE)
    if spec.preset_default is not None:
        note = f" {AUTO}: {spec.preset_default}."
        return click.option(flag, type=OrAuto(kind), default=AUTO, help=help_text + note)
    return click.option(flag, type=kind, default=getattr(config, name), help=help_text)


def _annotation_type(hint: Any) -> click.ParamType:
    if get_origin(hint) is Literal:
        return click.Choice(get_args(hint))
    if hint is bool:
        return click.BOOL
    raise TypeError(f"give FieldOption.type for a field of type {hint}")


def preset_switch(flag: str, help_text: str) -> Decorator:
    """A beat preset's on/off choice: true, false, or auto (the preset's, resolved at the edge)."""
    return click.option(
        flag,
        type=click.Choice([AUTO, "true", "false"]),
        default=AUTO,
        show_default=True,
        help=help_text,
    )


def data_source_options() -> Decorator:
    """--data-dir, --cache-dir and --preset."""
    candidates = " or ".join(str(path) for path in DATA_PATHS.data_dir_candidates)
    return stacked(
        [
            click.option(
                "--data-dir",
                callback=empty_as_none,
                metavar="DIR",
                help=f"MIT-BIH directory (WFDB or Kaggle CSV) [default: ${DATA_DIR_ENV}, else "
                f"{candidates}].",
            ),
            click.option(
                "--cache-dir",
                callback=empty_as_none,
                metavar="DIR",
                help=f"Preprocessed-array cache [default: ${CACHE_DIR_ENV}, else "
                f"{DATA_PATHS.cache_dir}].",
            ),
            click.option(
                "--preset",
                default="paper",
                show_default=True,
                help="Data protocol: paper (the study's 1-second windows), patient-specific or "
                "inter-patient (beats with AAMI classes; docs/beat-protocols.md).",
            ),
            click.option(
                "--label-set",
                type=click.Choice(["auto", *LABEL_SETS]),
                default="auto",
                show_default=True,
                help="Classes of a beat preset (auto: the preset's, aami for beats, binary for "
                "paper).",
            ),
            preset_switch(
                "--rr-features",
                "Give the model each beat's RR intervals beside its window (auto: yes on "
                "the beat presets, where they win; the paper preset has none).",
            ),
            preset_switch(
                "--median-deviation",
                "Follow each beat's window with its difference from the patient's "
                "reference beat (auto: the preset's, yes on inter-patient; beat presets only; "
                "docs/beat-protocols.md).",
            ),
            preset_switch(
                "--rr-variability",
                "Add a sixth RR feature, the coefficient of variation of the beat's recent "
                "RR intervals (auto: the preset's, off on every preset: it did not win, "
                "docs/results.md section 6; with --rr-features).",
            ),
        ]
    )


def training_options(stage: Stage) -> Decorator:
    """The data, patient, training and model options of a training command, with `stage`'s
    defaults (individual and finetune: per-patient values `auto`)."""
    pretrain, defaults = stage == "pretrain", stage_defaults(stage)
    patient_help = (
        "Patients whose train/validation windows are pooled: all, one id (105) or a list (105,106)."
        if pretrain
        else "Patients to run, one run each: one id (105), a list (105,106) or all (a parent run "
        "with one nested run per patient)."
    )
    patient = click.option(
        "--patient",
        "patients",
        type=Patients(),
        required=not pretrain,
        default="all" if pretrain else None,
        help=patient_help,
    )
    train = [
        field_option(defaults, name, spec, auto=not pretrain and name in PER_PATIENT_FIELDS)
        for name, spec in TRAIN_FIELDS.items()
        if name not in NOT_OPTIONS[stage]
    ]
    model = [field_option(ModelConfig(), name, spec) for name, spec in MODEL_FIELDS.items()]
    return stacked([data_source_options(), patient, *train, *model])


def pretrained_options() -> Decorator:
    """--pretrained and --force, for the commands that fine-tune."""
    return stacked(
        [
            click.option(
                "--pretrained",
                default=TRACKING.default_pretrained_uri,
                show_default=True,
                metavar="URI",
                help="Starting weights: any MLflow model URI (models:/NAME@ALIAS, "
                "models:/NAME/VERSION, runs:/ID/model) or a checkpoint file "
                "(runs:/ID/checkpoint/best.pt).",
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
    )


def study_options(patients_help: str) -> Decorator:
    """--data-dir, --cache-dir, --preset, --seed and --patient of `report` and `reproduce`."""
    return stacked(
        [
            data_source_options(),
            click.option(
                "--seed",
                type=SEED,
                default=DEFAULT_SEED,
                help="The runs' seed: of the splits (part of the data config), initialisation, "
                "sampling.",
            ),
            click.option(
                "--patient", "patients", type=Patients(), default="all", help=patients_help
            ),
        ]
    )


WORKERS_OPTION = click.option(
    "--workers",
    type=OrAuto(POSITIVE_INT),
    default=AUTO,
    help="Runs trained at once, each in its own process. auto: one per CPU core.",
)
EXECUTOR_OPTIONS = stacked(
    [
        click.option(
            "--executor",
            type=click.Choice(BACKENDS),
            default="local",
            help="Where the runs train: local processes, or Ray tasks (pip install "
            "'ecg-platform[ray]'; --workers auto: one per CPU of the Ray cluster).",
        ),
        click.option(
            "--ray-address",
            default="",
            metavar="ADDRESS",
            help="With --executor ray: empty starts a Ray on this machine for the command; "
            "auto or ray://HOST:PORT joins that cluster (its workers need a tracking server: "
            "MLFLOW_TRACKING_URI=http://...).",
        ),
    ]
)
OUT_OPTION = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=str(REPORT_DIR),
    help="Folder for report.md, the CSVs and the figures.",
)
