"""Gross VEB/SVEB of a seed ensemble: per patient, the mean of the class probabilities of the
models a `reproduce --repeats N` trained (one per training seed), beside each repeat alone.
`--arm generic` ensembles the N pretrained models (the versions the fine-tuned runs started
from), applied to every patient.

Reads the report's `runs.csv` (run id per arm, repeat and patient) and the store it names;
applies each run's logged model to the patient's test beats (the data layer's extraction,
training's own) and prints one line per repeat and one for the ensemble. A repeat's line
equals what `reproduce` logged for it (a check); the ensemble needs no training, only N
models at prediction time.

    MLFLOW_TRACKING_URI=sqlite:///path/mlflow.db PYTHONPATH=. .venv/bin/python \
        benchmarks/ensemble_repeats.py path/report/runs.csv [--arm finetune|individual|generic]
        [--data-dir ../shared/data/mitdb] [--cache-dir DIR]

The data config is the one the runs logged, so a store made before a preset changed still reads
its own beats.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from entry import run_main

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.config import resolve_cache_dir
from ecg_platform.data.loaders import tensor_splits
from ecg_platform.data.protocols import DS2
from ecg_platform.data.source import DataSource
from ecg_platform.engine.inference import predict_proba
from ecg_platform.evaluation.aami import RECORD_SETS, confusion, gross
from ecg_platform.models.protocol import Classifier
from ecg_platform.tracking.schema import TRACKING, model_family
from ecg_platform.tracking.trained_model import data_config_of_run, load_trained_model

Matrices = dict[str, np.ndarray]  # patient -> test confusion matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("--arm", default="finetune", choices=("finetune", "individual", "generic"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    runs = pd.read_csv(args.runs_csv, dtype={"patient": str})
    runs = runs[runs["mode"] == ("finetune" if args.arm == "generic" else args.arm)]
    config = data_config_of_run(runs["run_id"].iloc[0], str(args.runs_csv))
    if not isinstance(config, BeatConfig):
        raise SystemExit(f"{args.runs_csv}: its runs are not on a beat preset ({config.preset})")
    study = DataSource.resolve(config, args.data_dir, resolve_cache_dir(args.cache_dir)).load()
    pretrained = TRACKING.registered_model("pretrain", family=model_family(config))
    networks: dict[str, Classifier] = {}  # by model URI: generic applies each to every patient
    classes = len(config.class_names)
    per_repeat: dict[int, Matrices] = {}
    ensemble: Matrices = {}
    for patient, rows in runs.groupby("patient"):
        test = tensor_splits(study.split_arrays([patient]), "cpu")["test"]
        labels, probabilities = test.y.numpy(), []
        for row in rows.itertuples():
            uri = (
                f"models:/{pretrained}/{int(row.pretrained_version)}"
                if args.arm == "generic"
                else f"runs:/{row.run_id}/model"
            )
            if uri not in networks:
                networks[uri] = load_trained_model(uri).network()
            network = networks[uri]
            probabilities.append(predict_proba(network, test.x, test.features))
            predicted = probabilities[-1].argmax(axis=1)
            per_repeat.setdefault(row.repeat, {})[patient] = confusion(labels, predicted, classes)
        predicted = np.mean(probabilities, axis=0).argmax(axis=1)
        ensemble[patient] = confusion(labels, predicted, classes)
    inter_patient = config.protocol == "inter-patient"
    record_sets = {"DS2": DS2} if inter_patient else RECORD_SETS
    print(f"{args.arm}, gross %: VEB Se/+P/F1 and SVEB Se/+P/F1 per record set")
    for repeat, matrices in sorted(per_repeat.items()):
        print(f"repeat {repeat:<4}{_line(matrices, record_sets, config.class_names)}")
    print(f"ensemble   {_line(ensemble, record_sets, config.class_names)}")
    print(f"{len(ensemble)} patients, {time.perf_counter() - started:.0f} s")


def _line(
    matrices: Matrices, record_sets: Mapping[str, Sequence[str]], class_names: Sequence[str]
) -> str:
    parts = []
    for name, records in record_sets.items():
        figures = gross([matrices[r] for r in records if r in matrices], class_names)
        veb, sveb = (
            "/".join(f"{100 * figures[task][key]:.1f}" for key in ("se", "ppv", "f1"))
            for task in ("VEB", "SVEB")
        )
        parts.append(f"{name}: VEB {veb} SVEB {sveb}")
    return " | ".join(parts)


if __name__ == "__main__":
    run_main(main)
