"""`predict`: apply a trained model to a user's recording and write what a cardiologist reads:
per-window (`paper`) or per-beat (beat presets) results, a summary and a figure (optionally
logged to an MLflow run)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecg_platform.data.qrs import BeatSource, Detector
from ecg_platform.data.signal_input import Recording, RecordingSource
from ecg_platform.engine.prediction import Prediction
from ecg_platform.evaluation.predict_plots import prediction_figure
from ecg_platform.tracking.runs import stage_run
from ecg_platform.tracking.schema import DATA_HASH_TAG
from ecg_platform.tracking.trained_model import TrainedModel, load_trained_model

PREDICTIONS_FILE, BEATS_FILE = "predictions.csv", "beats.csv"
SUMMARY_FILE, FIGURE_FILE = "summary.json", "prediction.png"
OUTPUT_ROOT = Path("outputs/predict")
# the summary's numbers that a `predict` run logs as metrics (those the preset's summary has)
LOGGED_COUNTS = (
    "abnormal_burden_percent",
    "beats_per_minute",
    "windows",
    "beats",
    "beats_classified",
    "beats_skipped",
)


@dataclass(frozen=True)
class PredictRequest:
    """Everything `predict` needs, resolved at the CLI."""

    model_uri: str
    source: RecordingSource
    out_dir: Path
    beats: BeatSource = "detected"
    detector: Detector = "gqrs"
    log: bool = False


def run_predict(request: PredictRequest) -> dict[str, Any]:
    """Predict, write the outputs into `request.out_dir` (and log them); returns the summary.
    A bar over the steps shows on a terminal (a 30-minute record takes seconds)."""
    from tqdm import tqdm

    request.source.check()
    steps = ("load the model", "read the recording", "classify and find beats", "write outputs")
    with tqdm(steps, desc="predict", unit="step", disable=not sys.stderr.isatty()) as bar:
        bar.set_postfix_str(steps[0])
        trained = load_trained_model(request.model_uri)
        bar.update()
        bar.set_postfix_str(steps[1])
        recording = request.source.read(trained.data.channel)
        bar.update()
        bar.set_postfix_str(steps[2])
        pipeline = trained.pipeline()
        prediction = pipeline.run(recording, request.beats, request.detector)
        bar.update()
        bar.set_postfix_str(steps[3])
        summary = prediction.summary | model_fields(trained)
        write_outputs(request.out_dir, recording, prediction, summary)
        if request.log:
            log_outputs(request.out_dir, summary, trained)
        bar.update()
    return summary


def model_fields(trained: TrainedModel) -> dict[str, Any]:
    """Which model made the numbers, for the summary."""
    return {
        "model_uri": trained.source.uri,
        "model_run_id": trained.source.run_id,
        "preset": trained.data.preset,
        DATA_HASH_TAG: trained.data.hash(),
    }


def write_outputs(
    out_dir: Path, recording: Recording, prediction: Prediction, summary: dict[str, Any]
) -> None:
    """predictions.csv (per window or beat), beats.csv (window models), summary.json and
    prediction.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(prediction.rows).to_csv(out_dir / PREDICTIONS_FILE, index=False)
    if prediction.beats is not None:
        pd.DataFrame(prediction.beats).to_csv(out_dir / BEATS_FILE, index=False)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    title = (
        f"record {recording.name}: {summary['abnormal_burden_percent']}% abnormal "
        f"{prediction.unit}s, {summary['beats_per_minute']} beats/min ({summary['model_uri']})"
    )
    figure = prediction_figure(recording.signal, recording.fs, prediction, title)
    figure.savefig(out_dir / FIGURE_FILE, dpi=80)


def log_outputs(out_dir: Path, summary: dict[str, Any], trained: TrainedModel) -> None:
    """A `predict` run holding the outputs, the burden and rate as metrics, the model as tags."""
    tags = {DATA_HASH_TAG: trained.data.hash(), "model_uri": trained.source.uri}
    with stage_run("predict", str(summary["record"]), tags) as run:
        run.log_metrics({name: summary[name] for name in LOGGED_COUNTS if name in summary})
        for path in sorted(out_dir.iterdir()):
            run.log_file(path, "predict")
