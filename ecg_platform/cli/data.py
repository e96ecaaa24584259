"""`ecg-platform data`: summary, export and download (fast: no torch, no MLflow)."""

from __future__ import annotations

from pathlib import Path

import click

from ecg_platform.cli.options import data_source_options
from ecg_platform.cli.resolve import data_source
from ecg_platform.cli.types import Patients
from ecg_platform.data.config import DATA_PATHS
from ecg_platform.data.download import DEFAULT_TIMEOUT_S
from ecg_platform.data.patients import PatientSelection


@click.group()
def data() -> None:
    """Inspect, export or download the MIT-BIH data (fast: no torch, no MLflow)."""


@data.command()
@data_source_options()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def summary(as_json: bool, **source: str | None) -> None:
    """Per record: kept windows, normal, abnormal, abnormal share, selected; totals of the
    selected records. On a beat preset: per record its beats per AAMI class in each split, and
    the common set's."""
    import json

    from ecg_platform.data.beat_config import BeatConfig

    resolved = data_source(source)
    if isinstance(resolved.config, BeatConfig):
        from ecg_platform.data.beat_summary import beat_summary, format_beat_table

        result, table = beat_summary(resolved.load()), format_beat_table
    else:
        from ecg_platform.data.summary import format_table, study_summary

        result, table = study_summary(resolved.load()), format_table
    click.echo(json.dumps(result) if as_json else table(result))


@data.command()
@data_source_options()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .npz to write.",
)
@click.option(
    "--records",
    type=Patients(),
    default="all",
    show_default=True,
    help="Selected records to export: all, one id (105) or a list (105,106).",
)
def export(out: Path, records: PatientSelection, **source: str | None) -> None:
    """Write x (n, 128) float32, y, record and split (train/val/test) of each window to an .npz."""
    from ecg_platform.data.dataset import StudyData
    from ecg_platform.data.export import export_windows
    from ecg_platform.errors import EcgPlatformError

    study = data_source(source).load()
    if not isinstance(study, StudyData):
        raise EcgPlatformError("data export writes the paper preset's windows; beat presets: no")
    chosen = study.select(records)
    n_windows = export_windows(study, chosen, out)
    click.echo(f"wrote {n_windows} windows of {len(chosen)} record(s) to {out}")


@data.command()
@click.option(
    "--dest",
    default=str(DATA_PATHS.data_dir_candidates[0]),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to download into (the first default data location).",
)
@click.option(
    "--timeout", default=DEFAULT_TIMEOUT_S, show_default=True, help="Network timeout in seconds."
)
def download(dest: Path, timeout: float) -> None:
    """Download the complete MIT-BIH Arrhythmia Database (48 records) from PhysioNet."""
    from ecg_platform.data.download import download_mitdb

    click.echo(f"downloaded mitdb into {download_mitdb(dest, timeout)}")
