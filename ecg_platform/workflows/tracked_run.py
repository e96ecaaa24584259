"""One tracked training run, as every stage makes it: the study's data, the run's tags and
params, train-test-register, and the outcome it had (also rebuilt from a finished run)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ecg_platform.data.config import ProtocolConfig
from ecg_platform.data.loaders import TensorSplit, tensor_splits
from ecg_platform.data.source import Study
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.history import FitResult
from ecg_platform.engine.inference import evaluate
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.metrics import classification_metrics, matrix_from_metrics
from ecg_platform.evaluation.plots import (
    confusion_matrix_figure,
    confusion_matrix_figure_k,
    training_curves_figure,
)
from ecg_platform.models.cnn1d import CNN1D, count_trainable_parameters
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.registry import build_model
from ecg_platform.tracking.callback import EpochLogger
from ecg_platform.tracking.datasets import log_datasets
from ecg_platform.tracking.model_io import log_model
from ecg_platform.tracking.registry import promote_if_better, register_model
from ecg_platform.tracking.run_search import RunRecord
from ecg_platform.tracking.runs import TrackedRun
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    PATIENT_TAG,
    REGISTERED_MODEL_TAG,
    REGISTERED_VERSION_TAG,
    TRACKING,
    Stage,
    model_family,
)
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.resumable_run import ResumableRun, resumable_run

INPUT_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class LoadedStudy:
    """The request's study arrays and the records it asked for."""

    data_dir: Path
    study: Study
    records: list[str]

    def splits(self, records: Sequence[str], device: torch.device) -> dict[str, TensorSplit]:
        """Train/val/test tensors of `records`, pooled."""
        return tensor_splits(self.study.split_arrays(records), device)


def load_request_study(request: StageRequest) -> LoadedStudy:
    """Preprocess (or read from the cache) the requested records (every one for `all`), so a
    damaged record blocks only the commands that ask for it, and select them."""
    study = request.source.load(request.patients.ids)
    return LoadedStudy(request.source.data_dir, study, study.select(request.patients))


def stage_tags(request: StageRequest) -> dict[str, str]:
    """Tags of every run of a request, besides `stage`, `patient` and `git_commit`."""
    return {DATA_HASH_TAG: request.data.hash()}


def train_param(field: str) -> str:
    """The run parameter under which `config_params` logs the `TrainConfig` field `field`."""
    if field not in TrainConfig.__dataclass_fields__:
        raise ValueError(f"TrainConfig has no field {field!r}")
    return f"train.{field}"


def config_params(data: ProtocolConfig, model: ModelConfig, train: TrainConfig) -> dict[str, Any]:
    """The resolved configuration as run parameters, namespaced `data.`, `model.`, `train.`."""
    params: dict[str, Any] = {"data.preset": data.preset, "data.config_hash": data.hash()}
    params |= {f"model.{name}": value for name, value in asdict(model).items()}
    params |= {train_param(name): value for name, value in asdict(train).items()}
    return params


def new_model(request: StageRequest, seed: int) -> CNN1D:
    """A freshly initialised model of the request's architecture, input length and outputs."""
    seed_everything(seed)
    return build_model(request.model, input_length=request.data.input_length)


def patient_training_run(
    request: StageRequest, train: TrainConfig, tags: Mapping[str, str], params: Mapping[str, Any]
) -> AbstractContextManager[ResumableRun]:
    """The run of the request's one patient, `<stage>-<patient>` (nested under
    `request.parent_run_id`, if any), logging `params` and the resolved configuration (`train`
    for this patient); resumed when an interrupted one had these settings."""
    patient = request.patients.label
    return resumable_run(
        request.stage,
        patient,
        tags,
        dict(params) | config_params(request.data, request.model, train),
        request.source.cache_dir,
        f"{request.stage}-{patient}",
        parent_run_id=request.parent_run_id,
    )


def train_and_track(
    opened: ResumableRun,
    stage: Stage,
    patient: str,
    model: CNN1D,
    splits: Mapping[str, TensorSplit],
    train: TrainConfig,
    data: ProtocolConfig,
    data_dir: Path,
) -> RunOutcome:
    """Train (`fit`, checkpointed every epoch, resumed when `opened` says so), test the best
    weights, log everything, register and maybe promote."""
    run = opened.run
    run.log_dict(data.to_dict(), "data_config.json")
    log_datasets(run.run_id, splits, data.preset, data.hash(), data_dir)
    callbacks, metrics = [EpochLogger(run)], classification_metrics
    result = fit(
        model,
        splits["train"],
        splits["val"],
        train,
        callbacks,
        checkpoint_path=opened.checkpoint,
        resume=opened.resume,
        metrics=metrics,
    )
    test = evaluate(model, splits["test"], train.threshold, metrics=metrics)
    run.log_metrics(
        {f"test_{name}": value for name, value in test.items()}
        | {
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "epochs_run": len(result.history),
            "stopped_early": float(result.stopped_early),
            "trainable_params": count_trainable_parameters(model),
        }
    )
    log_checkpoint(run, model)
    log_figures(run, result, test, f"{stage} {patient}", data.class_names)
    example = splits["test"].take(slice(0, INPUT_EXAMPLE_ROWS))
    features = None if example.features is None else example.features.cpu().numpy()
    name = TRACKING.registered_model(stage, patient, model_family(data))
    val_loss, val_accuracy = (result.kept_val[key] for key in ("loss", "balanced_accuracy"))
    description = (
        f"{stage} {patient}: data config {data.hash()} (preset {data.preset}), validation loss "
        f"{val_loss:.4f} and balanced accuracy {val_accuracy:.4f} of {result.kept}, "
        f"test balanced accuracy {test['balanced_accuracy']:.4f}; run {run.run_id}"
    )
    version = register_model(
        log_model(model, example.x.cpu().numpy(), features),
        name,
        {
            "val_loss": val_loss,
            "val_balanced_accuracy": val_accuracy,
            DATA_HASH_TAG: data.hash(),
        },
        description,
    )
    champion = promote_if_better(name, version)
    run.set_tags({REGISTERED_MODEL_TAG: name, REGISTERED_VERSION_TAG: version})
    return RunOutcome(
        patient,
        run.run_id,
        test,
        result.best_epoch,
        name,
        version,
        champion,
        result.seconds_trained_here,
    )


def log_checkpoint(run: TrackedRun, model: CNN1D) -> None:
    """The best weights as a plain state dict, `checkpoint/best.pt` (loads weights-only)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "best.pt"
        torch.save({name: tensor.cpu() for name, tensor in model.state_dict().items()}, path)
        run.log_file(path, "checkpoint")


def log_figures(
    run: TrackedRun,
    result: FitResult,
    test: Mapping[str, float],
    title: str,
    class_names: Sequence[str],
) -> None:
    """Training curves and the test confusion matrix (2 x 2, or K x K), under `figures/`."""
    run.log_figure(
        training_curves_figure(result.history, result.best_epoch, result.averaged_epochs),
        "figures/training_curves.png",
    )
    if len(class_names) == 2:
        counts = (int(test[key]) for key in ("tn", "fp", "fn", "tp"))
        matrix = confusion_matrix_figure(*counts, title=f"{title}: test windows")
    else:
        matrix = confusion_matrix_figure_k(
            matrix_from_metrics(test), class_names, f"{title}: test beats"
        )
    run.log_figure(matrix, "figures/confusion_matrix.png")


def outcome_of_run(run: RunRecord) -> RunOutcome:
    """The outcome a finished run had, rebuilt from what it logged (to reuse the run)."""
    metrics = run.metrics
    return RunOutcome(
        patient=run.tags[PATIENT_TAG],
        run_id=run.run_id,
        test_metrics={
            key.removeprefix("test_"): value
            for key, value in metrics.items()
            if key.startswith("test_")
        },
        best_epoch=int(metrics.get("best_epoch", 0)),
        model_name=run.tags.get(REGISTERED_MODEL_TAG, ""),
        model_version=run.tags.get(REGISTERED_VERSION_TAG, ""),
        champion=False,
    )
