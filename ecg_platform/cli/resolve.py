"""The edge: parsed command-line values -> resolved, typed workflow requests.

The only place that resolves the data and cache directories, applies the command line's
training values over the stage defaults and decides which values stay `auto`; the workflows
below take the result as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ecg_platform.cli.options import MODEL_FIELDS, TRAIN_FIELDS
from ecg_platform.data.config import ProtocolConfig, data_config
from ecg_platform.data.source import DataSource
from ecg_platform.engine.config import TrainConfig
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import TRACKING, Stage, model_family
from ecg_platform.workflows.executor_spec import ExecutorSpec, Workers
from ecg_platform.workflows.request import (
    PER_PATIENT_FIELDS,
    ReportRequest,
    ReproduceRequest,
    StageRequest,
)
from ecg_platform.workflows.settings import GridSpec, stage_defaults

if TYPE_CHECKING:
    from ecg_platform.workflows.predict import PredictRequest

Params = Mapping[str, Any]
log = logging.getLogger(__name__)


def data_source(params: Params) -> DataSource:
    """--data-dir and --cache-dir (else their environment variables, else the defaults) and the
    --preset's config with --seed where the command has one."""
    label_set = None if params.get("label_set", "auto") == "auto" else params["label_set"]
    switches = ("rr_features", "median_deviation", "rr_variability")
    choices = [_choice(params, name) for name in switches]
    config = data_config(params["preset"], params.get("seed"), label_set, *choices)
    return DataSource.resolve(config, params["data_dir"], params["cache_dir"])


def _choice(params: Params, name: str) -> bool | None:
    """A true/false/auto option: None (the preset's) for auto."""
    return {"true": True, "false": False}.get(params.get(name, "auto"))


def check_tracking_store() -> None:
    """The tracking store, checked before any data is touched: a dead server, a read-only
    directory or a bad URI fails here in seconds, in one line (and a new SQLite store is
    migrated once, under a lock, before any worker starts). Runs left RUNNING by a process of
    this host that has died since (kill -9) are ended FAILED here, so none stays RUNNING."""
    from ecg_platform.tracking.store import prepare_store
    from ecg_platform.tracking.worker_runs import fail_runs_of_dead_processes

    prepare_store()
    if ended := fail_runs_of_dead_processes():
        log.warning(
            "ended FAILED %d run(s) whose process had died: %s", len(ended), ", ".join(ended)
        )


def stage_request(
    stage: Stage, params: Params, defaults: TrainConfig | None = None
) -> StageRequest:
    """`defaults` (else the stage's) with every training value given; those left `auto` are
    named in `per_patient`."""
    source = data_source(params)  # a bad preset or data directory: stop before MLflow loads
    source.check_patients(params["patients"])
    check_tracking_store()
    values = {name: params[name] for name in TRAIN_FIELDS if name in params}
    chosen = {name: value for name, value in values.items() if value is not None}
    return StageRequest(
        stage,
        source,
        params["patients"],
        model=model_config(params, source.config),
        train=(defaults or stage_defaults(stage, source.config)).replace(**chosen),
        per_patient=(frozenset(values) - frozenset(chosen)) & PER_PATIENT_FIELDS,
    )


def model_config(params: Params, data: ProtocolConfig) -> ModelConfig:
    """The architecture options, with the outputs and side features the data protocol needs:
    one logit for two classes, else one per class."""
    classes = len(data.class_names)
    return ModelConfig(
        **{name: params[name] for name in MODEL_FIELDS if name in params},
        num_outputs=1 if classes == 2 else classes,
        extra_features=data.side_features,
    )


def pretrained_uri(requested: str, data: ProtocolConfig, force: bool) -> str:
    """The default `--pretrained` names the study's champion; for another data protocol it
    means that protocol's own pretrained champion. Checked here, before torch loads and any
    run opens: it exists and, unless `force`, was pretrained on `data`'s config."""
    from ecg_platform.tracking.registry import pretrained_source

    uri = requested
    if requested == TRACKING.default_pretrained_uri:
        uri = TRACKING.pretrained_champion_uri(model_family(data))
    pretrained_source(uri, data, force)
    return uri


def grid_spec(params: Params) -> GridSpec:
    """The grid of --grid-batch-sizes, --grid-lrs and --grid-weighted."""
    return GridSpec(params["grid_batch_sizes"], params["grid_lrs"], params["grid_weighted"])


def worker_count(params: Params) -> int:
    """--workers, `auto`: one per CPU core."""
    from ecg_platform.workflows.executor import cpu_cores

    return params["workers"] or cpu_cores()


def executor_spec(params: Params) -> Workers:
    """--workers, --executor and --ray-address: a count of local processes, or a Ray spec
    (`auto` workers: one per CPU of the cluster). A cluster whose workers could not reach the
    tracking store is refused here, before any run starts; Ray is not imported."""
    backend, address = params["executor"], params["ray_address"]
    if backend == "local":
        if address:
            raise EcgPlatformError("--ray-address needs --executor ray")
        return worker_count(params)
    from ecg_platform.workflows.ray_executor import refuse_driver_only_store

    refuse_driver_only_store(address)
    return ExecutorSpec(params["workers"], backend, address)


def report_request(params: Params) -> ReportRequest:
    """The report's data, patients, parent runs (comma-separated ids; each must exist) and
    folder."""
    source = data_source(params)
    source.check_patients(params["patients"])
    check_tracking_store()
    from ecg_platform.tracking.run_search import get_run  # MLflow: after the cheap checks

    parents = tuple(parent.strip() for parent in params["parents"].split(",") if parent.strip())
    for parent in parents:  # a typo fails before the data and torch load
        get_run(parent)
    return ReportRequest(source, params["patients"], parents, params["out"])


def reproduce_request(params: Params) -> ReproduceRequest:
    """Each stage's defaults with the study's --epochs, --pretrain-epochs, --seed and
    --encoder-lr-scale."""
    source = data_source(params)
    source.check_patients(params["patients"])
    check_tracking_store()
    seed, epochs = params["seed"], params["epochs"]
    return ReproduceRequest(
        source,
        pretrain=stage_defaults("pretrain", source.config).replace(
            epochs=params["pretrain_epochs"], seed=seed
        ),
        patient=stage_defaults("individual").replace(epochs=epochs, seed=seed),
        finetune=stage_defaults("finetune").replace(
            epochs=epochs, seed=seed, encoder_lr_scale=params["encoder_lr_scale"]
        ),
        workers=executor_spec(params),
        patients=params["patients"],
        grid_winners=params["hparams"] == "auto",
        out_dir=params["out"],
        model=model_config(params, source.config),
        repeats=params["repeats"],
    )


def predict_request(params: Params) -> PredictRequest:
    """--model (else the --patient's fine-tuned champion), the recording and the output folder
    (else outputs/predict/<record>)."""
    from ecg_platform.data.signal_input import RecordingSource
    from ecg_platform.tracking.registry import default_model_uri, existing_model_source

    record, csv, fs = params["record"], params["csv_file"], params["fs"]
    if (record is None) == (csv is None) or (csv is not None and fs is None):
        raise EcgPlatformError("give either --record PATH or --csv FILE with --fs HZ")
    if params["model_uri"] is None and params["patient"] is None:
        raise EcgPlatformError("give --model URI or --patient ID")
    source = RecordingSource(record, csv, fs, params["start"], params["end"])
    source.check()
    check_tracking_store()
    model_uri = params["model_uri"]
    if model_uri is None:
        model_uri = default_model_uri(params["patient"], data_config(params["preset"]))
    existing_model_source(model_uri)  # a wrong URI fails in one line before torch loads
    from ecg_platform.workflows.predict import OUTPUT_ROOT, PredictRequest

    return PredictRequest(
        model_uri,
        source,
        params["out"] or OUTPUT_ROOT / source.name,
        params["beats"],
        params["detector"],
        params["log"],
    )
