"""`ecg-platform predict` (which seconds and beats of a recording a trained model flags) and
`ecg-platform pipeline` (the served companion of a registered model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ecg_platform.cli.types import NON_NEGATIVE_FLOAT, POSITIVE_FLOAT, OrEmpty, empty_as_none
from ecg_platform.data.qrs import BEAT_SOURCES, DETECTORS

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command(context_settings={"show_default": True})
@click.option(
    "--model",
    "model_uri",
    callback=empty_as_none,
    metavar="URI",
    help="Any registry or run URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model) "
    "[default with --patient: models:/ecg-finetuned-<patient>[-<preset>]@champion].",
)
@click.option("--patient", callback=empty_as_none, help="Use this patient's fine-tuned champion.")
@click.option(
    "--preset",
    default="paper",
    help="With --patient: the data protocol of the champion (paper, or patient-specific / "
    "inter-patient: AAMI classes with RR features; --model names any other).",
)
@click.option(
    "--record",
    type=OrEmpty(_PATH),
    help="A WFDB record (path without suffix, or its .hea); any rate; its .atr is used if there.",
)
@click.option("--csv", "csv_file", type=OrEmpty(_PATH), help="One column of mV.")
@click.option(
    "--fs", type=OrEmpty(POSITIVE_FLOAT), default=None, help="Sampling rate of --csv in Hz."
)
@click.option(
    "--start", type=OrEmpty(NON_NEGATIVE_FLOAT), default=None, help="Start at this second."
)
@click.option("--end", type=OrEmpty(POSITIVE_FLOAT), default=None, help="End at this second.")
@click.option(
    "--beats",
    type=click.Choice(BEAT_SOURCES),
    default="detected",
    help="Beats from the QRS detector, or the record's .atr annotations.",
)
@click.option("--detector", type=click.Choice(DETECTORS), default="gqrs", help="QRS detector.")
@click.option(
    "--out",
    type=OrEmpty(click.Path(file_okay=False, path_type=Path)),
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
def predict(**options: Any) -> None:
    """Classify every 1-second window (`paper` preset) or every beat (beat presets) of a
    recording with a trained model, preprocessed exactly as its training data (the data config
    of the model's run); write predictions.csv, summary.json, prediction.png (and for windows
    beats.csv)."""
    from ecg_platform.cli.resolve import predict_request

    request = predict_request(options)
    from ecg_platform.workflows.predict import run_predict  # after the request's checks

    summary = run_predict(request)
    click.echo(f"{headline(summary)}; wrote {request.out_dir}")


def headline(summary: dict[str, Any]) -> str:
    """What the summary says in one line: windows or beats flagged, beats, rate."""
    counts = summary["class_counts"]
    normal = next(iter(counts))
    record, burden = summary["record"], f"{summary['abnormal_burden_percent']}%"
    rate = f"{summary['beats']} beats ({summary['beats_per_minute']}/min)"
    if "windows" in summary:
        windows = summary["windows"]
        return (
            f"{record}: {windows - counts[normal]} of {windows} windows abnormal ({burden}), {rate}"
        )
    classified = summary["beats_classified"]
    by_class = ", ".join(f"{name} {n}" for name, n in counts.items() if name != normal)
    return (
        f"{record}: {classified - counts[normal]} of {classified} classified beats abnormal "
        f"({burden}: {by_class}), {rate}, {summary['beats_skipped']} not classifiable"
    )


@click.command()
@click.option("--model", "model_uri", required=True, metavar="URI", help="A registry or run URI.")
def pipeline(model_uri: str) -> None:
    """Log and register the companion pipeline model of MODEL (`<name>-pipeline`): raw samples
    and their rate in, per-window or per-beat results out, the preprocessing inside;
    `mlflow models serve` answers REST requests with it (README, "Use a model")."""
    from ecg_platform.cli.resolve import check_tracking_store
    from ecg_platform.tracking.registry import existing_model_source

    check_tracking_store()
    existing_model_source(model_uri)  # a wrong URI fails in one line before torch loads
    from ecg_platform.tracking.pipeline_model import log_pipeline_model

    name, version = log_pipeline_model(model_uri)
    click.echo(
        f"registered {name} v{version}; serve it with\n"
        f"mlflow models serve -m models:/{name}/{version} --env-manager local -p 5001"
    )
