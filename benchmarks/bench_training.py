"""Training speed on the 29 study records: pretraining, per-patient and fine-tuning epochs.

Prints one table row per case: windows trained per second, seconds per epoch (training and
validation together, the best of `--epochs` epochs), the process CPU seconds of an epoch (with
one thread, close to what an idle machine needs however busy this one is), the torch threads
used, and the peak memory of the process that ran it (each case runs in a fresh process; peak
RSS on the CPU, peak allocated memory on CUDA).

    python benchmarks/bench_training.py [--data-dir ../shared/data/mitdb] [--epochs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from entry import run_main

from ecg_platform.data.config import data_config, resolve_cache_dir
from ecg_platform.workflows.settings import PRETRAIN_DEFAULTS

CASES = {
    "pretrain epoch (batch 32, weighted)": ("pretrain", "full", 32),
    "per-patient epoch (batch 4, weighted)": ("patient", "full", 4),
    "fine-tune epoch, whole net, frozen encoder": ("patient", "frozen", 4),
    "fine-tune epoch, cached encoder features": ("patient", "head", 4),
}
PATIENT = "203"  # about 1,150 training windows, like the study's typical patient


class EpochProbe:
    """A trainer callback noting the torch threads and the process CPU seconds of each epoch."""

    def __init__(self) -> None:
        self.threads = 0
        self.cpu_seconds: list[float] = []
        self._last = time.process_time()

    def on_epoch_end(self, record: object, model: object, is_best: bool) -> None:
        import torch

        now = time.process_time()
        self.threads = torch.get_num_threads()
        self.cpu_seconds.append(now - self._last)
        self._last = now


def run_case(
    data_dir: Path, scope: str, mode: str, batch_size: int, epochs: int, threads: int
) -> dict:
    """Train one case for `epochs` epochs in this process; its speed and peak memory."""
    import torch

    from ecg_platform.data.dataset import load_study
    from ecg_platform.data.loaders import patient_splits
    from ecg_platform.engine.runtime import resolve_device, seed_everything
    from ecg_platform.engine.trainer import finetune_head, fit
    from ecg_platform.evaluation.metrics import classification_metrics as metrics
    from ecg_platform.models.cnn1d import CNN1D
    from ecg_platform.models.protocol import freeze_encoder

    study = load_study(data_dir, data_config("paper"), cache_dir=resolve_cache_dir())
    records = study.selected if scope == "pretrain" else [PATIENT]
    device = resolve_device()
    splits = patient_splits([study.patients[r] for r in records], device)
    config = PRETRAIN_DEFAULTS.replace(epochs=epochs, batch_size=batch_size, threads=threads)
    probe = EpochProbe()
    seed_everything(config.seed)
    model = CNN1D()
    train, val = splits["train"], splits["val"]
    if mode == "head":
        result = finetune_head(model, train, val, config, [probe], progress=False, metrics=metrics)
    else:
        if mode == "frozen":
            freeze_encoder(model)
        result = fit(model, train, val, config, [probe], progress=False, metrics=metrics)
    seconds = min(record.seconds for record in result.history)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    return {
        "train": len(train),
        "val": len(val),
        "seconds": seconds,
        "windows_per_s": len(train) / seconds,
        "peak_mib": peak_mib,
        "device": str(device),
        "threads": probe.threads,
        "cpu_seconds": min(probe.cpu_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per case (best one counts)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the trainer's)")
    args = parser.parse_args()
    print(
        f"{'case':44} {'train':>6} {'val':>5} {'windows/s':>10} {'s/epoch':>8} {'cpu s':>6} "
        f"{'threads':>7} {'peak MiB':>9}"
    )
    context = multiprocessing.get_context("spawn")
    for name, (scope, mode, batch_size) in CASES.items():
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            job = (args.data_dir, scope, mode, batch_size, args.epochs, args.threads)
            row = pool.submit(run_case, *job).result()
        print(
            f"{name:44} {row['train']:6d} {row['val']:5d} {row['windows_per_s']:10.0f} "
            f"{row['seconds']:8.2f} {row['cpu_seconds']:6.2f} {row['threads']:7d} "
            f"{row['peak_mib']:9.0f}",
            flush=True,
        )
    print(f"device: {row['device']}")


if __name__ == "__main__":
    run_main(main)
