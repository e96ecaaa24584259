"""`ecg-platform predict` and the served pipeline on a beat preset, with patient-specific models
of patient 119 trained by the real CLI: the beats and their inputs are the data layer's, the
probabilities the registered model's, the detected beats the annotations'.

The 119 excerpt is the record's first 5 minutes, which is exactly the first part of the beat
extraction (`train_minutes` = 5): training's extraction of the excerpt and predict's single part
are the same computation, so their beats must agree one for one.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from click.testing import CliRunner, Result
from wfdb import processing

from ecg_platform.cli import cli
from ecg_platform.data.beat_config import BeatConfig, BeatExtraction
from ecg_platform.data.beat_dataset import load_record_beats
from ecg_platform.data.config import data_config
from ecg_platform.data.labels import annotated_beat_classes, apply_label_set
from ecg_platform.data.qrs import MATCH_WINDOW_S
from ecg_platform.engine.inference import predict_proba
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.tracking.model_io import PYFUNC_CONFIG, log_model
from ecg_platform.tracking.pipeline_model import log_pipeline_model
from ecg_platform.tracking.schema import TRACKING, model_family
from ecg_platform.tracking.trained_model import load_trained_model

RECORD, FS = "119", 360
AAMI = data_config("patient-specific")  # AAMI classes, RR features
BINARY = data_config("patient-specific", label_set="binary", rr_features=False)
MEDIAN_DEVIATION = data_config("patient-specific", median_deviation=True)  # 486-sample inputs


def _uri(config: BeatConfig) -> str:
    return f"models:/{TRACKING.registered_model('individual', RECORD, model_family(config))}/1"


def _predict(*args: str) -> Result:
    return CliRunner().invoke(cli, ["predict", *args])


def _probability_columns(config: BeatConfig) -> list[str]:
    if config.label_set == "binary":
        return ["probability_abnormal"]
    return [f"probability_{name}" for name in config.class_names]


@pytest.mark.parametrize(
    "config", [AAMI, BINARY, MEDIAN_DEVIATION], ids=["aami-rr", "binary-no-rr", "median-deviation"]
)
def test_annotated_beats_get_the_models_outputs_on_the_data_layers_beats(
    beat_trained_models: Path, excerpt_dir: Path, config: BeatConfig
) -> None:
    uri = _uri(config)
    result = _predict(
        "--model", uri, "--record", str(excerpt_dir / RECORD), "--beats", "annotations"
    )
    assert result.exit_code == 0, result.output
    assert "classified beats abnormal" in result.output
    out = Path("outputs/predict") / RECORD
    rows = pd.read_csv(out / "predictions.csv")

    beats = load_record_beats(excerpt_dir, RECORD, config.extraction)  # training's extraction
    assert (beats.segment == 0).all()  # 5 minutes: all of it is the first part
    np.testing.assert_array_equal(rows["sample"], beats.sample)
    inputs = beats.x if not config.rr_features else np.concatenate([beats.x, beats.rr], axis=1)
    assert inputs.shape[1] == config.input_length + config.side_features  # 486 + 5 with it
    served = mlflow.pyfunc.load_model(uri, model_config=PYFUNC_CONFIG)  # the registered pt2
    expected = served.predict(inputs[:, None].astype(np.float32)).reshape(len(beats.sample), -1)
    np.testing.assert_allclose(rows[_probability_columns(config)], expected, atol=1e-5)
    names = np.asarray(config.class_names)
    assert (rows["reference"] == names[apply_label_set(beats.aami, config.label_set)]).all()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["beats_skipped"] == beats.dropped.sum() == 2  # the first and the last beat
    assert summary["beats"] == summary["beats_classified"] + 2 == len(rows) + 2
    assert (
        summary["class_counts"]
        == rows["predicted"].value_counts().reindex(config.class_names, fill_value=0).to_dict()
    )
    assert (out / "prediction.png").stat().st_size > 10_000
    assert not (out / "beats.csv").exists()  # the predictions are the beats


def test_a_loaded_models_network_gives_the_served_probabilities(
    beat_trained_models: Path, excerpt_dir: Path
) -> None:
    """`TrainedModel.network()`, which callers with their own inputs use (the seed-ensemble
    benchmark), is the registered pt2 model's computation on the data layer's beats."""
    uri = _uri(AAMI)
    beats = load_record_beats(excerpt_dir, RECORD, AAMI.extraction)
    network = load_trained_model(uri).network()
    assert not network.training
    found = predict_proba(network, torch.from_numpy(beats.x[:, None]), torch.from_numpy(beats.rr))
    served = mlflow.pyfunc.load_model(uri, model_config=PYFUNC_CONFIG)
    inputs = np.concatenate([beats.x, beats.rr], axis=1)[:, None].astype(np.float32)
    np.testing.assert_allclose(found, served.predict(inputs), atol=1e-5)


def test_detected_beats_match_the_annotations(
    beat_trained_models: Path, excerpt_dir: Path, copy_record, tmp_path: Path
) -> None:
    folder = copy_record(excerpt_dir, RECORD, tmp_path / "rec", (".hea", ".dat"))
    result = _predict("--model", _uri(AAMI), "--record", str(folder / RECORD), "--out", "o")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(Path("o") / "predictions.csv")
    reference = wfdb.rdann(str(excerpt_dir / RECORD), "atr")
    samples, _ = annotated_beat_classes(np.asarray(reference.sample), np.asarray(reference.symbol))
    match = processing.compare_annotations(
        samples, rows["sample"].to_numpy(), round(MATCH_WINDOW_S * FS)
    )
    assert match.sensitivity >= 0.99 and match.positive_predictivity >= 0.99
    assert "reference" not in rows
    summary = json.loads((Path("o") / "summary.json").read_text())
    assert summary["beat_source"] == "detected" and summary["beats_per_minute"] > 60


def test_the_served_pipeline_gives_what_predict_writes(
    beat_trained_models: Path, excerpt_dir: Path, copy_record, tmp_path: Path
) -> None:
    name, version = log_pipeline_model(_uri(AAMI))
    pipeline = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    signal = wfdb.rdrecord(str(excerpt_dir / RECORD), channels=[0]).p_signal[:, 0]
    answer = pipeline.predict({"samples": signal.tolist(), "fs": FS})

    folder = copy_record(excerpt_dir, RECORD, tmp_path / "rec", (".hea", ".dat"))
    result = _predict("--model", _uri(AAMI), "--record", str(folder / RECORD), "--out", "o")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(Path("o") / "predictions.csv")
    assert set(answer) == {"summary", "beats"}
    assert answer["beats"]["predicted"] == rows["predicted"].tolist()
    for column in ["time_s", "sample", *_probability_columns(AAMI)]:
        np.testing.assert_allclose(answer["beats"][column], rows[column], rtol=1e-12)
    summary = json.loads((Path("o") / "summary.json").read_text())
    for key in ("beats", "beats_classified", "class_counts", "abnormal_burden_percent"):
        assert answer["summary"][key] == summary[key]


def test_refusals_are_one_line(beat_trained_models: Path, excerpt_dir: Path) -> None:
    other = BeatConfig(extraction=BeatExtraction(input_length=100))
    with mlflow.start_run() as run:
        mlflow.log_dict(other.to_dict(), "data_config.json")
        log_model(CNN1D(input_length=126), np.zeros((2, 1, 126), dtype=np.float32))
    record = ("--record", str(excerpt_dir / RECORD))
    cases = {
        ("--model", f"runs:/{run.info.run_id}/model", *record): (
            "makes windows of 100 samples followed by 5 side features"
        ),
        ("--model", _uri(AAMI), "--record", str(excerpt_dir / "nothing")): "cannot read record",
        ("--model", _uri(AAMI), *record, "--end", "2"): "beats of 119 can be classified",
        # --patient names the preset's fine-tuned champion (the store holds individual models)
        ("--patient", RECORD, "--preset", "patient-specific", *record): (
            "no model at models:/ecg-finetuned-119-patient-specific@champion"
        ),
        ("--patient", RECORD, *record): "no model at models:/ecg-finetuned-119@champion",
        ("--patient", RECORD, "--preset", "nope", *record): "unknown preset 'nope'",
    }
    for args, message in cases.items():
        result = _predict(*args, "--out", "o")
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("Error: ") and message in last, result.output
        assert "Traceback" not in result.output
