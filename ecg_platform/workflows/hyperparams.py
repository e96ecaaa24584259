"""Which batch size, learning rate and sampling a patient's run uses, and where they came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from ecg_platform.data.config import DataConfig
from ecg_platform.engine.config import TrainConfig
from ecg_platform.tracking.run_search import find_runs
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    GRID_MODE_TAG,
    GRID_ROLE_TAG,
    GRID_WINNER_PREFIX,
    HPARAMS_GRID_RUN_TAG,
    HPARAMS_SOURCE_TAG,
    PATIENT_TAG,
    STAGE_TAG,
    PatientMode,
)
from ecg_platform.workflows.request import PER_PATIENT_FIELDS, StageRequest
from ecg_platform.workflows.settings import STUDY_HYPERPARAMS, PatientHyperparams

SOURCE_CLI = "cli"
SOURCE_GRID = "grid-search"
SOURCE_STUDY = "study-table"
SOURCE_DEFAULTS = "defaults"


@dataclass(frozen=True)
class GridWinner:
    """A patient's grid-search winner, recorded as tags on the patient's grid-search run."""

    hyperparams: PatientHyperparams
    parent_run_id: str  # the patient's grid-search run
    setting_run_id: str  # the winning setting's run

    def tags(self) -> dict[str, str]:
        """The tags that record it on the parent run."""
        settings = {name: str(value) for name, value in asdict(self.hyperparams).items()}
        settings["run_id"] = self.setting_run_id
        return {f"{GRID_WINNER_PREFIX}{name}": value for name, value in settings.items()}


def find_grid_winner(patient: str, data_hash: str, mode: PatientMode) -> GridWinner | None:
    """The latest finished grid search's winner for the patient and data config: of `mode`'s
    grid when there is one, else of the other mode's."""
    tags = {STAGE_TAG: "grid-search", GRID_ROLE_TAG: "patient", PATIENT_TAG: patient}
    runs = find_runs(tags | {DATA_HASH_TAG: data_hash})
    chosen = next((run for run in runs if run.tags.get(GRID_MODE_TAG) == mode), None)
    chosen = chosen or (runs[0] if runs else None)
    if chosen is None:
        return None
    winner = {key.removeprefix(GRID_WINNER_PREFIX): value for key, value in chosen.tags.items()}
    hyperparams = PatientHyperparams(
        batch_size=int(winner["batch_size"]),
        lr=float(winner["lr"]),
        weighted_sampling=winner["weighted_sampling"] == "True",
    )
    return GridWinner(hyperparams, chosen.run_id, winner["run_id"])


def patient_settings(patient: str, request: StageRequest) -> tuple[TrainConfig, dict[str, str]]:
    """The patient's training config for `request` and the tags saying where it came from:
    `hparams_source`, and the grid-search run when its winner was used."""
    winner = None
    if request.grid_winners and request.per_patient:
        winner = find_grid_winner(patient, request.data.hash(), request.stage)
    hyperparams = winner.hyperparams if winner else None
    # the study's table was tuned on its own windows: other protocols start from the defaults
    table = STUDY_HYPERPARAMS if isinstance(request.data, DataConfig) else {}
    train, source = patient_train_config(
        patient, request.train, request.per_patient, hyperparams, table
    )
    tags = {HPARAMS_SOURCE_TAG: source}
    if winner and SOURCE_GRID in source:
        tags[HPARAMS_GRID_RUN_TAG] = winner.parent_run_id
    return train, tags


def patient_train_config(
    patient: str,
    train: TrainConfig,
    per_patient: frozenset[str],
    winner: PatientHyperparams | None = None,
    table: Mapping[str, PatientHyperparams] = STUDY_HYPERPARAMS,
) -> tuple[TrainConfig, str]:
    """`train` with its `per_patient` fields taken from the patient's grid-search `winner`, else
    the study's table; the other fields were given on the command line and stay.

    The source names where they came from: `cli`, `grid-search`, `study-table`, `defaults` (a
    patient the table does not list), or a mix such as `cli+study-table`.
    """
    if not per_patient:
        return train, SOURCE_CLI
    entry = winner or table.get(patient)
    source = SOURCE_GRID if winner else SOURCE_STUDY if entry else SOURCE_DEFAULTS
    fallback = asdict(entry) if entry else {}
    config = train.replace(**{name: fallback[name] for name in per_patient if name in fallback})
    all_chosen = per_patient >= PER_PATIENT_FIELDS
    return config, source if all_chosen else f"{SOURCE_CLI}+{source}"
