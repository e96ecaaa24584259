"""Which pretraining weights to keep: the held-out validation loss's best epoch (what the engine
kept before `average_last`), or a choice that does not hang on one epoch's validation loss. One
pretraining per seed through the platform's data layer and engine (no MLflow) keeps every
epoch's weights; each rule below, fixed before any DS2 figure is read, then gives the generic
model's gross DS2 VEB/SVEB.
The per-epoch DS2 rows show how much the figures move from one epoch to the next (they choose
nothing). It decided the engine's `average_last` (on for inter-patient pretraining), which
is off here: every rule is applied to the same run afterwards.

    python benchmarks/pretraining_epoch_choice.py [--preset inter-patient] [--seeds 42 43 44]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from ablate_beats import confusion_of, figures
from entry import run_main
from torch import Tensor, nn

from ecg_platform.data.beat_config import BEAT_PRESETS, beat_config
from ecg_platform.data.config import resolve_cache_dir
from ecg_platform.data.loaders import tensor_splits
from ecg_platform.data.protocols import DS2
from ecg_platform.data.source import DataSource
from ecg_platform.engine.history import EpochRecord, FitResult
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.aami import gross
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.registry import build_model
from ecg_platform.workflows.settings import stage_defaults

Weights = dict[str, Tensor]
MIN_EPOCHS = 10  # the rule "best after a minimum": the engine's early_stopping_min_epochs
AVERAGED_EPOCHS = 10  # the rule "mean of the last epochs": the last third of 30


class EveryEpoch:
    """A fit callback that keeps a copy of the weights after each epoch."""

    def __init__(self) -> None:
        self.weights: list[Weights] = []

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None:
        self.weights.append({k: t.detach().clone() for k, t in model.state_dict().items()})


def _best_from(first: int) -> Callable[[FitResult, list[Weights]], Weights]:
    def rule(result: FitResult, weights: list[Weights]) -> Weights:
        later = [r for r in result.history if r.epoch >= first]
        return weights[min(later, key=lambda r: r.val["loss"]).epoch - 1]

    return rule


def _mean_of_last(count: int) -> Callable[[FitResult, list[Weights]], Weights]:
    def rule(result: FitResult, weights: list[Weights]) -> Weights:
        last = weights[-count:]
        return {name: torch.stack([w[name] for w in last]).mean(0) for name in last[0]}

    return rule


RULES: dict[str, Callable[[FitResult, list[Weights]], Weights]] = {
    "best val loss": _best_from(1),
    f"best from {MIN_EPOCHS}": _best_from(MIN_EPOCHS),
    "last epoch": lambda result, weights: weights[-1],
    f"mean last {AVERAGED_EPOCHS}": _mean_of_last(AVERAGED_EPOCHS),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="inter-patient", choices=sorted(BEAT_PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--epochs", type=int, default=None, help="default: the stage's")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < AVERAGED_EPOCHS:
        parser.error(f"--epochs must be at least {AVERAGED_EPOCHS}, the rules' epochs")
    config = beat_config(args.preset)
    study = DataSource.resolve(config, args.data_dir, resolve_cache_dir()).load()
    patients = list(DS2) if config.protocol == "inter-patient" else study.selected
    pooled = tensor_splits(study.split_arrays(patients), "cpu")
    classes = len(config.class_names)
    model_config = ModelConfig(num_outputs=classes, extra_features=config.side_features)
    rows: list[tuple[str, int, str]] = []
    for seed in args.seeds:
        started = time.perf_counter()
        seed_everything(seed)
        model = build_model(model_config, config.input_length)
        kept = EveryEpoch()
        train = stage_defaults("pretrain", config).replace(seed=seed, average_last=0)
        train = train.replace(epochs=args.epochs or train.epochs)
        result = fit(
            model,
            pooled["train"],
            pooled["val"],
            train,
            callbacks=[kept],
            progress=False,
            metrics=classification_metrics,
        )
        print(f"seed {seed}: pretraining {time.perf_counter() - started:.0f} s", flush=True)
        candidates = [
            (f"  epoch {record.epoch:2d}, val loss {record.val['loss']:.4f}", weights)
            for record, weights in zip(result.history, kept.weights, strict=True)
        ]
        candidates += [(name, rule(result, kept.weights)) for name, rule in RULES.items()]
        for name, weights in candidates:
            model.load_state_dict(weights)
            found = gross([confusion_of(model, pooled["test"], classes)], config.class_names)
            rows.append((name, seed, figures(found)))
    print(f"{'weights kept':<34}{'seed':<6}DS2 VEB Se   +P   F1 | SVEB Se   +P   F1")
    for name, seed, found in rows:  # seed by seed, as they were made
        print(f"{name:<34}{seed:<6}    {found}")


if __name__ == "__main__":
    run_main(main)
