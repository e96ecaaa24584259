"""Class metrics of the end-to-end beat pipeline, the figure a deployment would see: each
patient's registered model applied by `BeatPipeline` (what `predict` runs) to its record's test
part, minutes 5-30, once on the `.atr` beats and once on the beats a QRS detector finds.

Detected beats are matched to the `.atr` beats within 150 ms (EC57; `evaluation/detection.py`)
and counted as `bxb` counts them: a reference beat no classified detection matches is missed (a
missed V beat is a VEB false negative, a missed S beat an SVEB false negative), a detection that
matches no reference beat is extra (called V, a VEB false positive; called S, an SVEB one); the
first and last detection of the part get no class (no neighbour for the RR features), so the
reference beats they match count as missed. The common set's beats inside minutes 5-30 of records
100-124 are training beats: they are left out (with the detections matching them), as training's
test part leaves them out. Annotated-beat figures sit beside the store's own test matrices
(training's extraction of the same part) as a check.

Run from the repository root on a store made by `ecg-platform reproduce --preset
patient-specific` (the arms: `finetune`, each patient's fine-tuned champion; `generic`, the
pretrained champion alone):
`PYTHONPATH=. .venv/bin/python benchmarks/bench_pipeline_classes.py
--tracking-uri sqlite:///path/mlflow.db [--arms finetune,generic] [--records 100,101]`
(`--cache-dir`: the beat cache, for the common set; extracted there on first use).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
from entry import run_main
from mlflow import MlflowClient

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.beat_dataset import BeatStudy, load_beat_study
from ecg_platform.data.config import data_config, resolve_cache_dir
from ecg_platform.data.labels import AAMI_CLASSES, annotated_beat_classes
from ecg_platform.data.protocols import NON_PACED
from ecg_platform.data.signal_input import TRAINING_FS, crop, read_wfdb
from ecg_platform.engine.beat_pipeline import BeatPipeline
from ecg_platform.evaluation.aami import MISSED, RECORD_SETS, confusion, gross
from ecg_platform.evaluation.detection import detected_beat_confusion, qrs_counts
from ecg_platform.evaluation.metrics import matrix_from_metrics
from ecg_platform.tracking.run_search import artifact_json
from ecg_platform.tracking.schema import GENERIC_CONFUSIONS_ARTIFACT, TRACKING, model_family
from ecg_platform.tracking.trained_model import TrainedModel, load_trained_model

PRESET = "patient-specific"
TEST_START_S = 300.0  # the test part: minutes 5-30 (`train_minutes`)
SOURCES = ("store", "annotated", "detected")
Matrices = dict[str, dict[str, np.ndarray]]  # source -> record -> confusion matrix


def main() -> None:
    """Apply each arm's models to every record both ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--data-dir", default="../shared/data/mitdb")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--arms", default="finetune")
    parser.add_argument("--records", default=",".join(NON_PACED))
    parser.add_argument("--detector", default="gqrs", choices=("gqrs", "xqrs"))
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(args.tracking_uri)
    records = args.records.split(",")
    started = time.perf_counter()
    data_dir, cache_dir = Path(args.data_dir), resolve_cache_dir(args.cache_dir)
    results = {
        arm: measure_arm(arm, records, data_dir, cache_dir, args.detector)
        for arm in args.arms.split(",")
    }
    print(f"\nclass metrics (gross, %), {args.detector} for detected beats; missed and extra")
    print("beats count as bxb counts them (module docstring)\n")
    print(table(results, records))
    for arm, matrices in results.items():
        print("\n" + misses_and_extras(arm, matrices))
    print(f"\nwall time {time.perf_counter() - started:.0f} s for {len(records)} records")


def model_uri(arm: str, record: str) -> str:
    """The champion each arm applies to `record`."""
    family = model_family(data_config(PRESET))
    if arm == "generic":
        return TRACKING.pretrained_champion_uri(family)
    return f"models:/{TRACKING.registered_model(arm, record, family)}@{TRACKING.champion_alias}"


def measure_arm(
    arm: str, records: Sequence[str], data_dir: Path, cache_dir: Path, detector: str
) -> Matrices:
    """Per source, each record's confusion matrix (detected: with the missed/extra class)."""
    matrices: Matrices = {source: {} for source in SOURCES}
    print(
        f"\n{arm}: record, the champion's training seed, common-set beats left out, test beats "
        "in the store / here with annotated beats, cells of the two matrices that differ (sum of "
        "|difference|); with detected beats matched, missed, extra; seconds"
    )
    shared = load_arm_model(arm, records[0]) if arm == "generic" else None  # one for all
    for record in records:
        started = time.perf_counter()
        trained, pipeline = shared or load_arm_model(arm, record)
        training = common_samples(data_dir, trained.data, cache_dir, record)
        found = record_matrices(pipeline, data_dir / record, detector, training)
        found["store"] = logged_matrix(arm, trained, record)
        for source, matrix in found.items():
            matrices[source][record] = matrix
        qrs = qrs_counts(found["detected"])
        moved = np.abs(found["store"] - found["annotated"]).sum()
        print(
            f"{record} {training_seed(trained)} {training.size} "
            f"{found['store'].sum()} / {found['annotated'].sum()} {moved} "
            f"{qrs.tp} {qrs.fn} {qrs.fp} {time.perf_counter() - started:.1f}",
            flush=True,
        )
    return matrices


def load_arm_model(arm: str, record: str) -> tuple[TrainedModel, BeatPipeline]:
    """The arm's champion for `record` and its pipeline; an AAMI-class beat model only."""
    trained = load_trained_model(model_uri(arm, record))
    pipeline = trained.pipeline()
    if not isinstance(pipeline, BeatPipeline) or pipeline.data.label_set != "aami":
        raise SystemExit(f"{trained.source.uri} is no AAMI-class beat model")
    return trained, pipeline


def record_matrices(
    pipeline: BeatPipeline, path: Path, detector: str, training: np.ndarray
) -> dict[str, np.ndarray]:
    """The pipeline's confusion on the record's test part with annotated and detected beats,
    the beats at the record's samples `training` left out."""
    data: BeatConfig = pipeline.data
    recording = crop(read_wfdb(path, data.channel), TEST_START_S, None)
    reference, reference_class = annotated_beat_classes(
        recording.annotation_samples, recording.annotation_symbols
    )
    annotated = pipeline.run(recording, "annotations")
    detected = pipeline.run(recording, "detected", detector)
    k = len(data.class_names)
    first = round(recording.offset_s * recording.fs)  # `sample` counts from the source's start
    tested = ~np.isin(annotated.rows["sample"], training)
    return {
        "annotated": confusion(
            _indices(annotated.rows["reference"][tested], data),
            _indices(annotated.rows["predicted"][tested], data),
            k,
        ),
        "detected": detected_beat_confusion(
            reference,
            reference_class,
            detected.rows["sample"] - first,
            _indices(detected.rows["predicted"], data),
            recording.fs,
            k,
            left_out=np.isin(reference + first, training),
        ),
    }


def logged_matrix(arm: str, trained: TrainedModel, record: str) -> np.ndarray:
    """The test confusion matrix the store logged for this model on `record`'s test part."""
    run_id = trained.source.run_id
    if arm == "generic":
        return np.array(_generic_matrices(run_id)[record])
    return matrix_from_metrics(MlflowClient().get_run(run_id).data.metrics, "test_")


def common_samples(data_dir: Path, data: BeatConfig, cache_dir: Path, record: str) -> np.ndarray:
    """The record's samples of the common set's beats in its test part (training beats of every
    patient)."""
    samples = _study(data_dir, data, cache_dir).part(record, "common").sample
    return samples[samples >= round(TEST_START_S * TRAINING_FS)]


def training_seed(trained: TrainedModel) -> str:
    """The training seed of the model's run (repeats differ only in it)."""
    return MlflowClient().get_run(trained.source.run_id).data.params.get("train.seed", "?")


@functools.cache
def _study(data_dir: Path, data: BeatConfig, cache_dir: Path) -> BeatStudy:
    return load_beat_study(data_dir, data, cache_dir)


@functools.cache
def _generic_matrices(run_id: str) -> dict[str, list[list[int]]]:
    """The pretraining run's per-patient test matrices (read once per run)."""
    return artifact_json(run_id, GENERIC_CONFUSIONS_ARTIFACT) or {}


def table(results: dict[str, Matrices], records: Sequence[str]) -> str:
    """Gross VEB/SVEB Se, +P, F1 and QRS Se/+P per arm, record set and beat source."""
    lines = [
        "| arm | records | beats | reference beats | VEB Se | VEB +P | VEB F1 | SVEB Se | "
        "SVEB +P | SVEB F1 | QRS Se | QRS +P |",
        "|---|---|---|---:|" + "---:|" * 8,
    ]
    for arm, matrices in results.items():
        for set_name, members in RECORD_SETS.items():
            chosen = [record for record in records if record in members]
            if not chosen:
                continue
            for source in SOURCES:
                pooled = [matrices[source][record] for record in chosen]
                names = (*AAMI_CLASSES, MISSED) if source == "detected" else AAMI_CLASSES
                stats = gross(pooled, names)
                cells = [stats[task][m] for task in ("VEB", "SVEB") for m in ("se", "ppv", "f1")]
                total = np.sum(pooled, axis=0)
                beats = total.sum()
                if source == "detected":
                    qrs = qrs_counts(total)
                    cells += [qrs.sensitivity, qrs.positive_predictivity]
                    beats = qrs.tp + qrs.fn
                row = [arm, f"{set_name} ({len(chosen)})", source, f"{beats:,}"]
                row += [f"{100 * value:.2f}" for value in cells]
                lines.append("| " + " | ".join(row + [""] * (12 - len(row))) + " |")
    return "\n".join(lines)


def misses_and_extras(arm: str, matrices: Matrices) -> str:
    """Over all records: the pooled matrix of detected beats (its last row the extra
    detections, its last column the missed reference beats), and how far the annotated-beat
    matrices are from the store's (sum of |difference|)."""
    pooled = np.sum(list(matrices["detected"].values()), axis=0)
    names = (*AAMI_CLASSES, MISSED)
    lines = [f"{arm}, detected beats, {len(matrices['detected'])} records pooled (rows: reference)"]
    lines.append("     " + "".join(f"{name.lower():>8}" for name in names))
    lines += [
        f"{name:>4} " + "".join(f"{count:>8}" for count in row)
        for name, row in zip(names, pooled.tolist(), strict=True)
    ]
    moved = sum(
        int(np.abs(matrices["store"][record] - annotated).sum())
        for record, annotated in matrices["annotated"].items()
    )
    lines.append(f"annotated-beat matrices differ from the store's by {moved} beat(s)")
    return "\n".join(lines)


def _indices(names: np.ndarray, data: BeatConfig) -> np.ndarray:
    """Class names (`predicted`, `reference` columns) as the label set's indices."""
    return np.array([data.class_names.index(name) for name in names], dtype=np.int64)


if __name__ == "__main__":
    run_main(main)
