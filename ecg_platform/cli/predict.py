"""`ecg-platform predict`: which beats and seconds of a recording a trained model flags."""

from __future__ import annotations

from pathlib import Path

import click

from ecg_platform.cli.types import NON_NEGATIVE_FLOAT, POSITIVE_FLOAT, empty_as_none
from ecg_platform.data.qrs import BEAT_SOURCES, DETECTORS
from ecg_platform.errors import EcgPlatformError

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command(context_settings={"show_default": True})
@click.option(
    "--model",
    "model_uri",
    callback=empty_as_none,
    metavar="URI",
    help="Any registry or run URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model) "
    "[default with --patient: models:/ecg-finetuned-<patient>@champion].",
)
@click.option("--patient", callback=empty_as_none, help="Use this patient's fine-tuned champion.")
@click.option(
    "--record",
    callback=empty_as_none,
    type=_PATH,
    help="A WFDB record (path without suffix, or its .hea); any rate; its .atr is used if there.",
)
@click.option("--csv", "csv_file", callback=empty_as_none, type=_PATH, help="One column of mV.")
@click.option("--fs", type=POSITIVE_FLOAT, default=None, help="Sampling rate of --csv in Hz.")
@click.option("--start", type=NON_NEGATIVE_FLOAT, default=None, help="Start at this second.")
@click.option("--end", type=POSITIVE_FLOAT, default=None, help="End at this second.")
@click.option(
    "--beats",
    type=click.Choice(BEAT_SOURCES),
    default="detected",
    help="Beats from the QRS detector, or the record's .atr annotations.",
)
@click.option("--detector", type=click.Choice(DETECTORS), default="gqrs", help="QRS detector.")
@click.option(
    "--out",
    callback=empty_as_none,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: outputs/predict/<record>].",
)
@click.option(
    "--log",
    is_flag=False,
    flag_value=True,
    type=click.BOOL,
    default=False,
    help="Also log the outputs to an MLflow run (experiment ecg-predict).",
)
def predict(
    model_uri: str | None,
    patient: str | None,
    record: Path | None,
    csv_file: Path | None,
    fs: float | None,
    start: float | None,
    end: float | None,
    beats: str,
    detector: str,
    out: Path | None,
    log: bool,
) -> None:
    """Classify every 1-second window of a recording with a trained model, preprocessed exactly
    as its training data (the data config of the model's run); write predictions.csv,
    beats.csv, summary.json and prediction.png."""
    from ecg_platform.cli.resolve import check_tracking_store
    from ecg_platform.tracking.trained_model import default_model_uri
    from ecg_platform.workflows.predict import (
        OUTPUT_ROOT,
        PredictRequest,
        RecordingSource,
        run_predict,
    )

    if (record is None) == (csv_file is None) or (csv_file is not None and fs is None):
        raise EcgPlatformError("give either --record PATH or --csv FILE with --fs HZ")
    if model_uri is None and patient is None:
        raise EcgPlatformError("give --model URI or --patient ID")
    check_tracking_store()
    source = RecordingSource(record, csv_file, fs, start, end)
    request = PredictRequest(
        model_uri or default_model_uri(patient),
        source,
        out or OUTPUT_ROOT / source.name,
        beats,  # type: ignore[arg-type]
        detector,  # type: ignore[arg-type]
        log,
    )
    summary = run_predict(request)
    click.echo(
        f"{summary['record']}: {summary['class_counts']['abnormal']} of {summary['windows']} "
        f"windows abnormal ({summary['abnormal_burden_percent']}%), {summary['beats']} beats "
        f"({summary['beats_per_minute']}/min); wrote {request.out_dir}"
    )
