"""What the generic (pretrained) networks of a `reproduce` look at when they call a beat S.

Applies the N pretrained models the fine-tuned runs started from, as one model (the mean of their
class probabilities), to every patient's test beats, and prints three things:

1. **RR features**: the mean probability of S of each group of beats, as given, with the RR
   features made neutral (previous and next interval = the local mean, ratios 1), set to zero,
   and with every beat made premature (previous interval 0.6 of the local mean). A network that
   uses them moves; one that reads prematurity off the window does not.
2. **Occlusion**: how much the probability of S falls when 0.1 s of the input is replaced by the
   input's median, by region of the window (the previous beat, the P wave, the QRS, the T wave),
   and of the deviation from the reference beat when the preset has it (`median_deviation`).
   A figure (`--out`) draws the groups' mean inputs and the fall along the window.
3. **An RR gate** (a diagnostic, not a method): S calls whose previous interval is above
   `threshold` x the local mean moved to N, gross SVEB per threshold on the test parts and, on
   the inter-patient preset, on the DS1 validation records (whole records the pretraining never
   trained on): the threshold is to be read there, never on DS2.

    MLFLOW_TRACKING_URI=sqlite:///path/mlflow.db PYTHONPATH=. .venv/bin/python \\
        benchmarks/explain_s_calls.py path/report/runs.csv [--records 200,213,222]
        [--beats 300] [--out explain_s_calls.png] [--data-dir DIR] [--cache-dir DIR]

The groups: N beats called S in each of `--records` (default: the three records with the most),
S beats called S and N beats called N over all test parts; at most `--beats` of each (seeded).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from entry import run_main
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ecg_platform.data.beat_config import RR_FEATURES, BeatConfig
from ecg_platform.data.beat_dataset import BeatArrays
from ecg_platform.data.config import resolve_cache_dir
from ecg_platform.data.protocols import DS1_VALIDATION
from ecg_platform.data.source import DataSource
from ecg_platform.engine.inference import predict_proba
from ecg_platform.evaluation.aami import confusion, gross
from ecg_platform.models.protocol import Classifier
from ecg_platform.tracking.schema import TRACKING, model_family
from ecg_platform.tracking.trained_model import data_config_of_run, load_trained_model

N, S = 0, 1
PRE, POST, LOCAL = (RR_FEATURES.index(name) for name in ("pre_rr_s", "post_rr_s", "local_rr_s"))
PRE_RATIO, POST_RATIO = (RR_FEATURES.index(name) for name in ("pre_over_local", "post_over_local"))
REGIONS = {"previous beat": (-0.9, -0.3), "P wave": (-0.3, -0.08), "QRS": (-0.08, 0.08)}
REGIONS |= {"T wave": (0.08, 0.45)}
PATCH_S, STRIDE_S = 0.1, 0.033
GATES = (None, 1.0, 0.95, 0.9, 0.85)
RrChange = Callable[[torch.Tensor], torch.Tensor]


def _neutral(rr: torch.Tensor) -> torch.Tensor:
    out = rr.clone()
    out[:, [PRE, POST]] = rr[:, [LOCAL, LOCAL]]
    out[:, [PRE_RATIO, POST_RATIO]] = 1.0
    return out


def _premature(rr: torch.Tensor) -> torch.Tensor:
    out = rr.clone()
    out[:, PRE] = 0.6 * rr[:, LOCAL]
    out[:, PRE_RATIO] = 0.6
    return out


RR_CHANGES: dict[str, RrChange] = {
    "neutral": _neutral,
    "zero": torch.zeros_like,
    "premature": _premature,
}


class Ensemble:
    """The mean class probabilities of several networks."""

    def __init__(self, networks: Sequence[Classifier]) -> None:
        self.networks = networks

    def proba(self, x: torch.Tensor, rr: torch.Tensor | None) -> np.ndarray:
        return np.mean([predict_proba(net, x, rr) for net in self.networks], axis=0)

    def p_s(self, x: torch.Tensor, rr: torch.Tensor | None) -> np.ndarray:
        return self.proba(x, rr)[:, S]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("--records", default=None, help="comma-separated; default: top three")
    parser.add_argument("--beats", type=int, default=300, help="at most this many per group")
    parser.add_argument("--out", type=Path, default=Path("explain_s_calls.png"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = pd.read_csv(args.runs_csv, dtype={"patient": str})
    runs = runs[runs["mode"] == "finetune"]
    config = data_config_of_run(runs["run_id"].iloc[0], str(args.runs_csv))
    if not isinstance(config, BeatConfig) or not config.rr_features:
        raise SystemExit(f"{args.runs_csv}: its runs are not on a beat preset with RR features")
    study = DataSource.resolve(config, args.data_dir, resolve_cache_dir(args.cache_dir)).load()
    pretrained = TRACKING.registered_model("pretrain", family=model_family(config))
    versions = sorted({int(version) for version in runs["pretrained_version"]})
    model = Ensemble([load_trained_model(f"models:/{pretrained}/{v}").network() for v in versions])
    print(f"{len(versions)} pretrained versions {versions} as one model, {config.preset}")

    test = study.parts(sorted(runs["patient"].unique()), "test")
    x, rr = _tensors(test)
    test_proba = model.proba(x, rr)
    called = test_proba.argmax(axis=1)
    false_s = pd.Series(test.record[(test.y == N) & (called == S)]).value_counts()
    records = args.records.split(",") if args.records else list(false_s.index[:3])
    rng = np.random.default_rng(0)
    masks = {f"{r} N called S": (test.record == r) & (test.y == N) & (called == S) for r in records}
    masks |= {
        "S called S": (test.y == S) & (called == S),
        "N called N": (test.y == N) & (called == N),
    }
    groups = {name: _sample(mask, args.beats, rng) for name, mask in masks.items()}

    _print_rr_response(model, x, rr, groups)
    _occlusion(model, x, rr, groups, config, args.out)
    gated = {"test parts": (test, test_proba)}
    if config.protocol == "inter-patient":
        validation = study.parts(DS1_VALIDATION, "val")
        gated = {"DS1 validation records": (validation, model.proba(*_tensors(validation)))} | gated
    _print_gates(gated, config.class_names)


def _tensors(beats: BeatArrays) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(beats.x[:, None, :]), torch.as_tensor(beats.rr)


def _sample(mask: np.ndarray, at_most: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.flatnonzero(mask)
    return rows if len(rows) <= at_most else np.sort(rng.choice(rows, at_most, replace=False))


def _print_rr_response(
    model: Ensemble, x: torch.Tensor, rr: torch.Tensor, groups: dict[str, np.ndarray]
) -> None:
    print("\n1. mean probability of S: as given, and with the RR features changed")
    print(f"{'group':<18}{'beats':>6}{'given':>8}" + "".join(f"{c:>11}" for c in RR_CHANGES))
    for name, rows in groups.items():
        given = model.p_s(x[rows], rr[rows]).mean()
        changed = [model.p_s(x[rows], change(rr[rows])).mean() for change in RR_CHANGES.values()]
        cells = "".join(f"{value:>11.3f}" for value in changed)
        print(f"{name:<18}{len(rows):>6}{given:>8.3f}{cells}")


def _occlusion(
    model: Ensemble,
    x: torch.Tensor,
    rr: torch.Tensor,
    groups: dict[str, np.ndarray],
    config: BeatConfig,
    out: Path,
) -> None:
    extraction = config.extraction
    length = extraction.input_length
    rate = length / (extraction.before_s + extraction.after_s)
    seconds = (np.arange(length) - round(extraction.before_s * rate)) / rate
    halves = ["window", "deviation"][: x.shape[-1] // length]
    figure = Figure(figsize=(11, 7), layout="constrained")
    FigureCanvasAgg(figure)
    inputs, falls = figure.subplots(2, 1, sharex=True)
    print(f"\n2. fall of the probability of S when {PATCH_S} s is blanked (max over the region)")
    print(f"{'group':<18}{'input':<10}" + "".join(f"{region:>15}" for region in REGIONS))
    for name, rows in groups.items():
        fall = _occlusion_fall(model, x[rows], rr[rows], round(PATCH_S * rate), rate)
        mean = x[rows, 0, :length].mean(0).numpy()
        (line,) = inputs.plot(seconds, mean, label=f"{name} ({len(rows)} beats)")
        for index, half in enumerate(halves):
            part = fall[index * length : (index + 1) * length]
            maxima = [part[(seconds >= a) & (seconds < b)].max() for a, b in REGIONS.values()]
            print(f"{name:<18}{half:<10}" + "".join(f"{value:>+15.3f}" for value in maxima))
            style = "-" if index == 0 else ":"
            falls.plot(seconds, part, style, color=line.get_color(), label=f"{name} ({half})")
    inputs.set(ylabel="mean window", title="What the generic networks see, by group of beats")
    falls.set(xlabel="seconds from the R peak", ylabel=f"fall of p(S), {PATCH_S} s blanked")
    for axes in (inputs, falls):
        axes.axvline(0, color="grey", linestyle="--")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.savefig(out, dpi=110)
    print(f"figure: {out}")


def _occlusion_fall(
    model: Ensemble, x: torch.Tensor, rr: torch.Tensor, patch: int, rate: float
) -> np.ndarray:
    """Per input sample, the mean fall of p(S) over the patches that cover it."""
    given = model.p_s(x, rr)
    fill = x.median(dim=-1, keepdim=True).values
    total, covered = np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
    for start in range(0, x.shape[-1] - patch + 1, max(1, round(STRIDE_S * rate))):
        blanked = x.clone()
        blanked[..., start : start + patch] = fill
        total[start : start + patch] += (given - model.p_s(blanked, rr)).mean()
        covered[start : start + patch] += 1
    return total / np.maximum(covered, 1)


def _print_gates(
    gated: dict[str, tuple[BeatArrays, np.ndarray]], class_names: Sequence[str]
) -> None:
    """Gross SVEB per gate: counts pooled over records are the counts of their beats pooled."""
    print("\n3. S calls moved to N when previous RR / local mean > threshold: gross SVEB Se/+P/F1")
    for label, (beats, proba) in gated.items():
        cells, argmax = [], proba.argmax(axis=1)
        for gate in GATES:
            called = argmax
            if gate is not None:
                called = np.where((argmax == S) & (beats.rr[:, PRE_RATIO] > gate), N, argmax)
            sveb = gross([confusion(beats.y, called, len(class_names))], class_names)["SVEB"]
            figures = "/".join(f"{100 * sveb[key]:.1f}" for key in ("se", "ppv", "f1"))
            cells.append(f"{'none' if gate is None else gate}: {figures}")
        print(f"{label}: " + "  ".join(cells))


if __name__ == "__main__":
    run_main(main)
