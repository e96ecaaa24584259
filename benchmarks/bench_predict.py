"""`predict` and the served pipeline, timed: a whole 30-minute record (in-process, each step
and the total, the first call and the median of warm calls; and the CLI as a fresh process), and
the REST round trip of a 10-second strip (median over 100 requests).

Run from the repository root: `.venv/bin/python benchmarks/bench_predict.py [--record 208]`.
It trains a one-epoch model on the 119 excerpt in a temporary store first (about 10 s).
Goals (the "Use the models" issue): <= 3 s warm for a 30-minute record, including detection;
<= 50 ms median REST round trip for a 10-second strip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import requests
import torch
from entry import run_main
from timing import wall_and_cpu

from ecg_platform.data.qrs import detect_beats
from ecg_platform.data.signal_input import RecordingSource
from ecg_platform.engine.inference import predict_proba
from ecg_platform.tracking.model_serving import model_server
from ecg_platform.tracking.pipeline_model import log_pipeline_model
from ecg_platform.tracking.trained_model import load_trained_model
from ecg_platform.workflows.predict import PredictRequest, run_predict

MODEL = "models:/ecg-individual-119/1"
EXCERPTS = Path("tests/data/mitdb").resolve()


def _timed(action: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Wall seconds of the first call, the median wall and CPU (all threads) seconds of the
    others: CPU time shows the work when other jobs share the cores and stretch the wall time."""
    wall, cpu = wall_and_cpu(action, repeats)
    return wall[0], statistics.median(wall[1:]), statistics.median(cpu[1:])


def _train(store: Path) -> None:
    """In another process, so that training leaves this one's torch threads as predict finds
    them."""
    command = [sys.executable, "-m", "ecg_platform", "individual", "--patient", "119"]
    command += ["--epochs", "1", "--workers", "1", "--data-dir", str(EXCERPTS)]
    command += ["--cache-dir", str(store / "cache")]
    subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/data/mitdb")
    parser.add_argument("--record", default="208")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    record = (Path(args.data_dir) / args.record).resolve()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as scratch:
        store = Path(scratch)
        os.chdir(store)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        _train(store)
        _predict_table(record, store, args.repeats)
        _rest_table(record, store, args.requests)


def _predict_table(record: Path, store: Path, repeats: int) -> None:
    trained = load_trained_model(MODEL)
    recording = RecordingSource(record).read(0)
    pipeline = trained.pipeline()
    inputs = pipeline.inputs(recording)
    request = PredictRequest(MODEL, RecordingSource(record), store / "out")
    steps = {
        "load the model (registry, pt2 weights, run configs)": lambda: load_trained_model(MODEL),
        "read the WFDB record": lambda: RecordingSource(record).read(0),
        "preprocess (min-max, band-pass, windows, FFT resampling)": lambda: pipeline.inputs(
            recording
        ),
        "classify the windows": lambda: predict_proba(pipeline.model, torch.from_numpy(inputs)),
        "detect the beats (gqrs)": lambda: detect_beats(recording.signal, recording.fs, "gqrs"),
        "detect the beats (xqrs)": lambda: detect_beats(recording.signal, recording.fs, "xqrs"),
        "run_predict, all of it (gqrs, CSVs, summary, figure)": lambda: run_predict(request),
    }
    summary = run_predict(request)
    print(
        f"\nrecord {record.name}: {summary['duration_s']:.0f} s, {summary['windows']} windows, "
        f"{summary['beats']} detected beats"
    )
    print("| step | first call (s) | warm, median (s) | warm CPU (s) |\n|---|---:|---:|---:|")
    for name, action in steps.items():
        first, warm, cpu = _timed(action, repeats)
        print(f"| {name} | {first:.3f} | {warm:.3f} | {cpu:.3f} |", flush=True)
    command = [sys.executable, "-m", "ecg_platform", "predict", "--model", MODEL]
    command += ["--record", str(record), "--out", str(store / "cli")]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    print(f"| `ecg-platform predict` as a new process | {wall:.3f} | | |")


def _rest_table(record: Path, store: Path, n_requests: int) -> None:
    name, version = log_pipeline_model(MODEL)
    strip = RecordingSource(record, start_s=60, end_s=70).read(0).signal
    body = json.dumps({"inputs": {"samples": strip.tolist(), "fs": 360}})
    headers = {"Content-Type": "application/json"}
    with model_server(f"models:/{name}/{version}", store / "serve.log") as url:
        session = requests.Session()
        times = []
        for index in range(10 + n_requests):
            started = time.perf_counter()
            response = session.post(f"{url}/invocations", data=body, headers=headers, timeout=30)
            response.raise_for_status()
            if index >= 10:
                times.append(time.perf_counter() - started)
    times.sort()
    print(f"\nREST round trip, 10-second strip of {record.name}, {n_requests} requests after 10:")
    print("| median (ms) | p90 (ms) | min (ms) | max (ms) |\n|---:|---:|---:|---:|")
    p90 = times[int(0.9 * len(times)) - 1]
    print(
        f"| {1000 * statistics.median(times):.1f} | {1000 * p90:.1f} | "
        f"{1000 * times[0]:.1f} | {1000 * times[-1]:.1f} |"
    )


if __name__ == "__main__":
    run_main(main)
