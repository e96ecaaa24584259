"""Every MLflow name the platform writes: experiments, registered models, tags and their keys.

One place, so that a tag written by one stage and searched for by another can never drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ecg_platform.data.config import DataConfig, ProtocolConfig

Stage = Literal[
    "pretrain", "individual", "finetune", "grid-search", "report", "reproduce", "predict"
]
PatientMode = Literal["individual", "finetune"]

STAGE_TAG = "stage"
PATIENT_TAG = "patient"
GIT_COMMIT_TAG = "git_commit"
DATA_HASH_TAG = "data_config_hash"
FAILURE_TAG = "failure_reason"
HOST_TAG = "host"  # the machine and process writing a run: a RUNNING run whose process is gone
PID_TAG = "pid"  # on this host is ended FAILED by the next command (tracking/worker_runs.py)
CHECKPOINT_KEY_TAG = "checkpoint_key"  # the settings' hash: names the run's local checkpoint
REGISTERED_MODEL_TAG = "registered_model"
REGISTERED_VERSION_TAG = "registered_version"
PRETRAINED_URI_TAG = "pretrained_uri"
PRETRAINED_VERSION_TAG = "pretrained_version"
PRETRAINED_RUN_TAG = "pretrained_run_id"
PRETRAIN_RUN_TAG = "pretrain_run_id"  # a report's: the pretraining its fine-tuned runs used
HPARAMS_SOURCE_TAG = "hparams_source"
HPARAMS_GRID_RUN_TAG = "hparams_grid_run_id"
GRID_ROLE_TAG = "grid_role"  # "patient": a patient's grid-search parent; "setting": one setting
GRID_MODE_TAG = "grid_mode"
GRID_SETTING_TAG = "grid_setting"
GRID_WINNER_PREFIX = "grid_winner_"
GENERIC_CONFUSIONS_ARTIFACT = "generic_confusions.json"  # pretrain: {patient: test matrix}
SELECTION_METRIC = "val_loss"  # registry versions carry it; the champion has the lowest


@dataclass(frozen=True)
class TrackingNames:
    """MLflow naming: one experiment per stage, one registered model per stage (and patient)."""

    experiment_prefix: str = "ecg-"
    pretrained_model: str = "ecg-pretrained"
    patient_model_prefixes: tuple[tuple[str, str], ...] = (
        ("individual", "ecg-individual-"),
        ("finetune", "ecg-finetuned-"),
    )
    champion_alias: str = "champion"

    def experiment(self, stage: Stage) -> str:
        """The experiment of a stage, e.g. `ecg-pretrain`."""
        return f"{self.experiment_prefix}{stage}"

    def registered_model(self, stage: Stage, patient: str | None = None, family: str = "") -> str:
        """`ecg-pretrained`, or the per-patient name, e.g. `ecg-finetuned-105`; other data
        protocols than the study's carry their `family` suffix (`model_family`)."""
        if stage == "pretrain":
            return f"{self.pretrained_model}{family}"
        return f"{dict(self.patient_model_prefixes)[stage]}{patient}{family}"

    @property
    def default_pretrained_uri(self) -> str:
        """What finetune starts from unless told otherwise (the study's windows)."""
        return self.pretrained_champion_uri()

    def pretrained_champion_uri(self, family: str = "") -> str:
        """The pretrained champion of a data protocol's model family."""
        return f"models:/{self.pretrained_model}{family}@{self.champion_alias}"


def model_family(data: ProtocolConfig) -> str:
    """The registered-model suffix of a data protocol: none for the study's windows, else
    `-<preset>`, `-<label set>` unless AAMI, `-no-rr` without RR features; so each protocol
    keeps its own champion (validation losses of different protocols do not compare), and
    `-median-dev` with the median deviation (its inputs are twice as long) and `-rr-cv` with
    the sixth RR feature (one more side input)."""
    if isinstance(data, DataConfig):
        return ""
    label_set = "" if data.label_set == "aami" else f"-{data.label_set}"
    rr = "-no-rr" if not data.rr_features else "-rr-cv" if data.extraction.rr_variability else ""
    deviation = "-median-dev" if data.extraction.median_deviation else ""
    return f"-{data.preset}{label_set}{rr}{deviation}"


TRACKING = TrackingNames()
