"""Seconds per pretraining epoch on the patient-specific protocol with and without flushing
denormal numbers: as training proceeds, tiny values make the CPU's float maths many times
slower unless they are flushed to zero (`torch.set_flush_denormal`).

    python benchmarks/bench_denormals.py [--epochs 12] [--data-dir DIR]
"""

from __future__ import annotations

import argparse

import torch

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
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = data_config("patient-specific")
    study = DataSource.resolve(config, args.data_dir, resolve_cache_dir()).load()
    splits = tensor_splits(study.split_arrays(study.select(EVERY_PATIENT)), "cpu")
    print(f"pretraining epochs, {len(splits['train'])} beats, batch 32, 1 thread (s per epoch)")
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        seed_everything(42)
        model = build_model(ModelConfig(num_outputs=len(config.class_names)), config.input_length)
        train = TrainConfig(epochs=args.epochs, batch_size=32)
        result = fit(
            model,
            splits["train"],
            splits["val"],
            train,
            metrics=classification_metrics,
            progress=False,
        )
        seconds = " ".join(f"{record.seconds:.1f}" for record in result.history)
        print(f"flush denormals {'yes' if flush else 'no ':<4} {seconds}")


if __name__ == "__main__":
    main()
