"""The MLproject file: every entry point calls its CLI command with every option, and its
defaults, parsed and resolved by the CLI, give exactly the typed configs' defaults."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import pytest
from mlflow import MlflowClient
from mlflow.projects import _project_spec

from ecg_platform.cli import cli
from ecg_platform.cli.resolve import (
    grid_spec,
    predict_request,
    report_request,
    reproduce_request,
    stage_request,
)
from ecg_platform.data.config import ProtocolConfig, data_config
from ecg_platform.data.patients import EVERY_PATIENT, PatientSelection
from ecg_platform.data.signal_input import RecordingSource
from ecg_platform.data.source import DataSource
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.schema import TRACKING, model_family
from ecg_platform.workflows.executor import cpu_cores
from ecg_platform.workflows.predict import OUTPUT_ROOT, PredictRequest
from ecg_platform.workflows.request import (
    PER_PATIENT_FIELDS,
    ReportRequest,
    ReproduceRequest,
    StageRequest,
)
from ecg_platform.workflows.settings import (
    BEAT_PRETRAIN_AUGMENT,
    INTER_PATIENT_AVERAGED_EPOCHS,
    REPORT_DIR,
    STUDY_GRID,
    stage_defaults,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "pretrain": "pretrain",
    "individual": "individual",
    "finetune": "finetune",
    "grid_search": "grid-search",
    "report": "report",
    "reproduce": "reproduce",
    "predict": "predict",
}
TRAINING_ENTRY_POINTS = [name for name in COMMANDS if name != "predict"]
CLI_ONLY_OPTIONS = {"--cache-dir", "--help"}  # the cache is the machine's, not the project's
PATIENT = "119"


@pytest.fixture(scope="module")
def project() -> _project_spec.Project:
    return _project_spec.load_project(str(REPO_ROOT))


@pytest.fixture
def source(
    excerpt_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_store: str
) -> DataSource:
    """MLproject's empty `data_dir` falls back to $ECG_DATA_DIR: the excerpts here. Resolving a
    request prepares the tracking store: a temporary one (else `./mlflow.db` of the checkout)."""
    monkeypatch.setenv("ECG_DATA_DIR", str(excerpt_dir))
    monkeypatch.setenv("ECG_CACHE_DIR", str(tmp_path))
    return DataSource(excerpt_dir, tmp_path, data_config("paper"))


def _parsed(project: _project_spec.Project, entry_point: str, **given: str) -> dict[str, Any]:
    """The CLI's parameters for `mlflow run -e entry_point` with `given` (and the required ones)."""
    spec = project.get_entry_point(entry_point)
    required = {name: PATIENT for name, param in spec.parameters.items() if param.default is None}
    words = shlex.split(spec.compute_command(required | given, storage_dir=None))
    assert words[:2] == ["ecg-platform", COMMANDS[entry_point]]
    return cli.commands[COMMANDS[entry_point]].make_context(entry_point, words[2:]).params


def test_the_entry_points_exist_with_the_conda_env(project: _project_spec.Project) -> None:
    assert set(project._entry_points) == set(COMMANDS)
    assert project.env_config_path == str(REPO_ROOT / "conda.yaml")


@pytest.mark.parametrize("entry_point", COMMANDS)
def test_every_cli_option_is_a_parameter_passed_to_it(
    project: _project_spec.Project, entry_point: str
) -> None:
    spec = project.get_entry_point(entry_point)
    words = shlex.split(spec.command)
    command = cli.commands[COMMANDS[entry_point]]
    flags = {flag for opt in command.params if isinstance(opt, click.Option) for flag in opt.opts}
    assert {word for word in words if word.startswith("--")} == flags - CLI_ONLY_OPTIONS
    for name in spec.parameters:
        assert words[words.index("--" + name.replace("_", "-")) + 1] == "{" + name + "}"


def _expected(entry_point: str, source: DataSource) -> StageRequest | ReportRequest:
    """The request the entry point's defaults must resolve to, from the typed configs alone."""
    one = PatientSelection((PATIENT,))
    model = ModelConfig()
    return {
        "pretrain": StageRequest(
            "pretrain", source, EVERY_PATIENT, model, stage_defaults("pretrain")
        ),
        "individual": StageRequest(
            "individual", source, one, model, stage_defaults("individual"), PER_PATIENT_FIELDS
        ),
        "finetune": StageRequest(
            "finetune", source, one, model, stage_defaults("finetune"), PER_PATIENT_FIELDS
        ),
        "grid_search": StageRequest(
            "grid-search", source, one, model, stage_defaults("individual")
        ),
        "report": ReportRequest(source, EVERY_PATIENT, (), REPORT_DIR),
        "reproduce": ReproduceRequest(
            source,
            stage_defaults("pretrain"),
            stage_defaults("individual"),
            stage_defaults("finetune"),
            cpu_cores(),
            EVERY_PATIENT,
            model,
            grid_winners=False,
            out_dir=REPORT_DIR,
        ),
    }[entry_point]


def _resolved(entry_point: str, params: dict[str, Any]) -> StageRequest | ReportRequest:
    if entry_point == "report":
        return report_request(params)
    if entry_point == "reproduce":
        return reproduce_request(params)
    if entry_point == "grid_search":
        return stage_request("grid-search", params, stage_defaults(params["mode"]))
    return stage_request(entry_point, params)


@pytest.mark.parametrize("entry_point", TRAINING_ENTRY_POINTS)
def test_mlproject_defaults_resolve_to_the_typed_configs(
    project: _project_spec.Project, entry_point: str, source: DataSource
) -> None:
    params = _parsed(project, entry_point)
    assert _resolved(entry_point, params) == _expected(entry_point, source)
    if "workers" in params:
        assert params["workers"] is None  # auto: one per core
        assert (params["executor"], params["ray_address"]) == ("local", "")
    if "pretrained" in params:
        assert (params["pretrained"], params["force"]) == (TRACKING.default_pretrained_uri, False)
    if entry_point == "grid_search":
        assert params["mode"] == "individual"
        assert grid_spec(params) == STUDY_GRID


def test_a_default_that_drifts_is_caught(
    project: _project_spec.Project, source: DataSource
) -> None:
    """The control: one MLproject default changed makes the resolved request differ."""
    params = _parsed(project, "finetune", early_stopping="false")
    assert _resolved("finetune", params) != _expected("finetune", source)


def test_float_typed_parameters_accept_integral_values(
    project: _project_spec.Project, source: DataSource
) -> None:
    params = _parsed(project, "individual", epochs="2.0", seed="7.0", num_blocks="3.0")
    request = stage_request("individual", params)
    assert (request.train.epochs, request.train.seed, request.model.num_blocks) == (2, 7, 3)
    assert request.data.split_seed == 7
    with pytest.raises(click.BadParameter, match=r"'2\.5' is not a whole number"):
        _parsed(project, "individual", epochs="2.5")


def test_predict_defaults_resolve_to_the_patients_champion(
    project: _project_spec.Project, mlflow_store: str, excerpt_dir: Path
) -> None:
    """The request names the model; it and the recording must exist (checked before torch
    loads), not load."""
    record = str(excerpt_dir / "208")
    params = _parsed(project, "predict", patient=PATIENT, record=record)
    name = TRACKING.registered_model("finetune", PATIENT)
    with pytest.raises(EcgPlatformError, match=f"no model at models:/{name}@champion"):
        predict_request(params)
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id).version
    client.set_registered_model_alias(name, "champion", version)
    assert predict_request(params) == PredictRequest(
        f"models:/{name}@champion",
        RecordingSource(record=Path(record)),
        OUTPUT_ROOT / "208",
    )
    uri = f"runs:/{run_id}/model"
    Path("x.csv").write_text("0.1\n")
    given = _parsed(project, "predict", model=uri, csv="x.csv", fs="250", log="true")
    request = predict_request(given)
    assert (request.model_uri, request.source.fs, request.log) == (uri, 250.0, True)


@pytest.mark.parametrize("preset", ["patient-specific", "inter-patient"])
def test_pretraining_on_a_beat_preset_augments_and_averages_by_default(
    project: _project_spec.Project, source: DataSource, preset: str
) -> None:
    """`augment=auto` is the preset's: 0.3 when pretraining beats (paper: 0, checked above);
    `average_last=auto`: 10 when pretraining inter-patient, else 0; an explicit value wins; the
    patient stages never augment nor average."""
    averaged = INTER_PATIENT_AVERAGED_EPOCHS if preset == "inter-patient" else 0
    pretrain = stage_request("pretrain", _parsed(project, "pretrain", preset=preset))
    assert pretrain.train.augment == BEAT_PRETRAIN_AUGMENT == 0.3
    assert pretrain.train.average_last == averaged
    assert pretrain.per_patient == frozenset()  # auto here is the preset's, not the patient's
    reproduce = reproduce_request(_parsed(project, "reproduce", preset=preset))
    assert (reproduce.pretrain.augment, reproduce.pretrain.average_last) == (0.3, averaged)
    assert reproduce.patient.augment == reproduce.finetune.augment == 0
    assert reproduce.patient.average_last == reproduce.finetune.average_last == 0
    given = _parsed(project, "pretrain", preset=preset, augment="0", average_last="3")
    explicit = stage_request("pretrain", given).train
    assert (explicit.augment, explicit.average_last) == (0, 3)


def test_median_deviation_and_rr_variability_are_choices_of_the_beat_presets(
    project: _project_spec.Project, source: DataSource
) -> None:
    """`auto` is the preset's choice (on for inter-patient only); `median_deviation=true` doubles
    every beat input, `rr_variability=true` adds a sixth side feature, each registers under its
    own family; the paper preset refuses them in one line."""

    def config(preset: str, **given: str) -> ProtocolConfig:
        parsed = _parsed(project, "pretrain", preset=preset, **given)
        return stage_request("pretrain", parsed).source.config

    inter_patient = config("inter-patient")
    without = config("inter-patient", median_deviation="false")
    assert inter_patient.input_length == 2 * without.input_length == 486
    assert model_family(inter_patient) == "-inter-patient-median-dev"
    assert model_family(without) == "-inter-patient"
    assert config("patient-specific").input_length == 243
    assert config("patient-specific", median_deviation="true").input_length == 486
    report = report_request(_parsed(project, "report", preset="inter-patient"))
    assert report.source.config == inter_patient  # the report finds the runs reproduce made
    with pytest.raises(EcgPlatformError, match="no RR features, median deviation or RR var"):
        stage_request("pretrain", _parsed(project, "pretrain", median_deviation="true"))
    variability = config("inter-patient", rr_variability="true")
    assert (variability.side_features, inter_patient.side_features) == (6, 5)
    assert model_family(variability) == "-inter-patient-rr-cv-median-dev"
    with pytest.raises(EcgPlatformError, match="no RR features, median deviation or RR var"):
        stage_request("pretrain", _parsed(project, "pretrain", rr_variability="true"))
