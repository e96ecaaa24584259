"""Seconds per pretraining epoch with and without flushing denormal numbers: as training
converges, tiny values make the CPU's float maths many times slower unless they are flushed to
zero, which importing `ecg_platform.engine.runtime` does (`flush_denormals`).

Each variant runs in its own process, because torch's threads copy the floating-point mode of
the thread that starts them: the mode is chosen before torch's first parallel operation.

    python benchmarks/bench_denormals.py [--preset paper] [--epochs 6] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch
from entry import run_main

from ecg_platform.data.config import data_config, resolve_cache_dir
from ecg_platform.data.loaders import tensor_splits
from ecg_platform.data.patients import EVERY_PATIENT
from ecg_platform.data.source import DataSource
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.registry import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variant", choices=("flush", "keep"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(_epoch_seconds(args.preset, args.epochs, args.data_dir, args.variant == "flush"))
        return
    print(f"pretraining on {args.preset}, batch 32, seed 42: seconds per epoch")
    for variant in ("keep", "flush"):
        command = [sys.argv[0], "--variant", variant, "--preset", args.preset]
        command += ["--epochs", str(args.epochs)]
        command += ["--data-dir", args.data_dir] if args.data_dir else []
        seconds = subprocess.run(
            [sys.executable, *command], check=True, capture_output=True, text=True
        ).stdout.strip()
        print(f"flush denormals {'yes' if variant == 'flush' else 'no ':<4} {seconds}")


def _epoch_seconds(preset: str, epochs: int, data_dir: str | None, flush: bool) -> str:
    """Train `epochs` epochs on every patient of `preset`; each epoch's seconds."""
    torch.set_flush_denormal(flush)  # before any parallel operation: the threads inherit it
    config = data_config(preset)
    study = DataSource.resolve(config, data_dir, resolve_cache_dir()).load()
    splits = tensor_splits(study.split_arrays(study.select(EVERY_PATIENT)), "cpu")
    seed_everything(42)
    classes = len(config.class_names)
    outputs = 1 if classes == 2 else classes  # one sigmoid output for two classes
    model = build_model(ModelConfig(num_outputs=outputs), config.input_length)
    train = TrainConfig(epochs=epochs, batch_size=32)
    result = fit(
        model, splits["train"], splits["val"], train, metrics=classification_metrics, progress=False
    )
    return " ".join(f"{record.seconds:.1f}" for record in result.history)


if __name__ == "__main__":
    run_main(main)
