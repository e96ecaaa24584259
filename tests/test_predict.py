"""`ecg-platform predict` on real MIT-BIH excerpts with a model trained by the real CLI: the
windows are the data layer's, the probabilities the trained model's, the beats the annotations'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from click.testing import CliRunner, Result
from wfdb import processing

from ecg_platform.cli import cli
from ecg_platform.data.dataset import StudyData
from ecg_platform.data.labels import NOT_A_BEAT, aami_classes
from ecg_platform.data.qrs import MATCH_WINDOW_S
from ecg_platform.engine.inference import predict_proba
from ecg_platform.models.cnn1d import CNN1D, load_pretrained
from ecg_platform.tracking.model_io import load_state_dict, log_model

RECORD = "119"


def _predict(*args: str) -> Result:
    return CliRunner().invoke(cli, ["predict", *args])


def _annotated_beats(excerpt_dir: Path) -> np.ndarray:
    reference = wfdb.rdann(str(excerpt_dir / RECORD), "atr")
    symbols = np.asarray(reference.symbol, dtype=str)
    return np.asarray(reference.sample)[aami_classes(symbols) != NOT_A_BEAT]


def test_window_probabilities_are_the_trained_models_on_the_data_layers_windows(
    trained_model: str, excerpt_dir: Path, excerpt_study: StudyData, tmp_path: Path
) -> None:
    result = _predict("--model", trained_model, "--record", str(excerpt_dir / RECORD))
    assert result.exit_code == 0, result.output
    out = Path("outputs/predict") / RECORD
    windows = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    labelled = windows[windows["reference"] != "none"]
    patient = excerpt_study.patients[RECORD]  # the kept windows, in time order
    model = CNN1D()
    load_pretrained(model, load_state_dict(trained_model))
    expected = predict_proba(model, torch.from_numpy(patient.x[:, None]))
    assert len(labelled) == len(expected)
    np.testing.assert_allclose(labelled["probability_abnormal"], expected, atol=1e-5)
    assert (labelled["reference"] == np.where(patient.y == 1, "abnormal", "normal")).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] == 300 and summary["model_uri"] == trained_model
    assert summary["class_counts"]["abnormal"] == (windows["predicted"] == "abnormal").sum()
    assert (out / "prediction.png").stat().st_size > 10_000


@pytest.mark.parametrize("with_atr", [True, False])
def test_detected_beats_match_the_annotations(
    trained_model: str, excerpt_dir: Path, copy_record, tmp_path: Path, with_atr: bool
) -> None:
    suffixes = (".hea", ".dat", ".atr") if with_atr else (".hea", ".dat")
    folder = copy_record(excerpt_dir, RECORD, tmp_path / "rec", suffixes)
    result = _predict("--model", trained_model, "--record", str(folder / RECORD), "--out", "o")
    assert result.exit_code == 0, result.output
    beats = pd.read_csv(Path("o") / "beats.csv")
    reference = _annotated_beats(excerpt_dir)
    match = processing.compare_annotations(
        reference, beats["sample"].to_numpy(), round(MATCH_WINDOW_S * 360)
    )
    assert match.sensitivity >= 0.99 and match.positive_predictivity >= 0.99
    assert ("reference" in pd.read_csv(Path("o") / "predictions.csv").columns) == with_atr


def test_annotated_beats_are_the_atr_beats(trained_model: str, excerpt_dir: Path) -> None:
    args = ["--model", trained_model, "--record", str(excerpt_dir / RECORD), "--out", "o"]
    result = _predict(*args, "--beats", "annotations", "--start", "60", "--end", "120")
    assert result.exit_code == 0, result.output
    beats = pd.read_csv(Path("o") / "beats.csv")
    reference = _annotated_beats(excerpt_dir)
    inside = reference[(reference >= 60 * 360) & (reference < 120 * 360)]
    np.testing.assert_array_equal(beats["sample"], inside)
    windows = pd.read_csv(Path("o") / "predictions.csv")
    assert (windows["start_s"].iloc[0], len(windows)) == (60.0, 60)


def test_a_csv_at_another_rate_is_resampled(
    trained_model: str, excerpt_dir: Path, tmp_path: Path
) -> None:
    signal = wfdb.rdrecord(str(excerpt_dir / RECORD), channels=[0]).p_signal[:, 0]
    at_250 = processing.resample_sig(signal, 360, 250)[0]
    csv = tmp_path / "strip.csv"
    pd.DataFrame({"mV": at_250}).to_csv(csv, index=False)
    result = _predict("--model", trained_model, "--csv", str(csv), "--fs", "250", "--out", "o")
    assert result.exit_code == 0, result.output
    beats = pd.read_csv(Path("o") / "beats.csv")
    match = processing.compare_annotations(
        _annotated_beats(excerpt_dir) * 250 / 360, beats["sample"].to_numpy(), 0.15 * 250
    )
    assert match.sensitivity >= 0.99
    assert len(pd.read_csv(Path("o") / "predictions.csv")) == 300


def test_bad_inputs_are_one_line(trained_model: str, excerpt_dir: Path, tmp_path: Path) -> None:
    csv = tmp_path / "slow.csv"
    csv.write_text("\n".join(str(v) for v in np.sin(np.arange(500))))
    cases = {
        ("--record", str(tmp_path / "nothing")): "cannot read record",
        ("--csv", str(csv), "--fs", "50"): "sampling rate 50 Hz is not supported",
        ("--record", str(excerpt_dir / RECORD), "--start", "400"): "--start/--end must lie",
    }
    for args, message in cases.items():
        result = _predict("--model", trained_model, *args)
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("Error: ") and message in last, result.output
        assert "Traceback" not in result.output


def test_the_recording_is_checked_before_the_model(tmp_path: Path) -> None:
    """A wrong path fails on the path, before the registry is asked (or torch loads)."""
    cases = {
        ("--record", str(tmp_path / "nothing")): "cannot read record",
        ("--csv", str(tmp_path / "nothing.csv"), "--fs", "360"): "no CSV file at",
    }
    for args, message in cases.items():
        result = _predict("--model", "models:/no-such-model@champion", *args)
        assert result.exit_code == 1, result.output
        assert message in result.output.strip().splitlines()[-1], result.output


def test_a_model_of_another_input_length_is_refused(trained_model: str, excerpt_dir: Path) -> None:
    import mlflow

    from ecg_platform.data.config import DataConfig

    with mlflow.start_run() as run:
        mlflow.log_dict(DataConfig(resample_length=256).to_dict(), "data_config.json")
        log_model(CNN1D(), np.zeros((2, 1, 128), dtype=np.float32))
    result = _predict(
        "--model", f"runs:/{run.info.run_id}/model", "--record", str(excerpt_dir / RECORD)
    )
    assert result.exit_code == 1
    assert "makes windows of 256 samples" in result.output


def test_logged_to_a_predict_run(trained_model: str, excerpt_dir: Path) -> None:
    from mlflow import MlflowClient

    args = ["--model", trained_model, "--record", str(excerpt_dir / RECORD), "--end", "30"]
    result = _predict(*args, "--log", "--out", "o")
    assert result.exit_code == 0, result.output
    (run,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("ecg-predict").experiment_id]
    )
    assert run.data.tags["stage"] == "predict" and run.info.status == "FINISHED"
    files = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "predict")}
    assert files == {
        f"predict/{name}"
        for name in ("predictions.csv", "beats.csv", "summary.json", "prediction.png")
    }
