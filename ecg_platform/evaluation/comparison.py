"""Individual vs fine-tuned: per-patient table, summary statistics, Wilcoxon test, figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import wilcoxon

from ecg_platform.evaluation.intervals import mean_ci, paired_difference_ci

MODES = ("individual", "finetune")
MODE_LABELS = {"individual": "individual (from scratch)", "finetune": "fine-tuned"}
RUN_INFO = ("patient", "mode", "windows", "abnormal_share")
PRIMARY_METRIC = "balanced_accuracy"


@dataclass(frozen=True)
class Comparison:
    """Per-patient results of both modes side by side, their statistics and the paired test."""

    table: pd.DataFrame
    summary: pd.DataFrame
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    missing: dict[str, list[str]]


def compare(results: pd.DataFrame, patients: list[str]) -> Comparison:
    """Pivot long results (patient, mode, windows, abnormal_share, then the compared metrics,
    `balanced_accuracy` among them): a row per patient.

    Patients without a run of some mode are listed in `missing` (never silently dropped).
    """
    missing = {
        mode: [p for p in patients if p not in set(results.loc[results["mode"] == mode, "patient"])]
        for mode in MODES
    }
    compared = [column for column in results.columns if column not in RUN_INFO]
    wide = results.pivot_table(index="patient", columns="mode", values=compared)
    wide.columns = [f"{mode}_{metric}" for metric, mode in wide.columns]
    info = results.groupby("patient")[["windows", "abnormal_share"]].first()
    ordered = [f"{mode}_{metric}" for metric in compared for mode in MODES]
    table = info.join(wide.reindex(columns=ordered)).reindex(patients)
    table.index.name = "patient"
    table["windows"] = table["windows"].astype("Int64")
    summary = table.drop(columns=["windows"]).agg(["mean", "median", "std"]).T
    paired = table[[f"{mode}_{PRIMARY_METRIC}" for mode in MODES]].dropna()
    statistic, pvalue = _paired_wilcoxon(paired.iloc[:, 1], paired.iloc[:, 0])
    return Comparison(table, summary, statistic, pvalue, missing)


def over_repeats(per_repeat: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Each mode's mean test balanced accuracy over patients, one value per repeat (a repeat's
    long results, as `compare` takes them), as its mean over repeats with the 95% t interval,
    and fine-tuned minus individual paired by repeat: rows `individual`, `finetune`,
    `finetune - individual`; columns mean, low, high, n."""
    means = {
        mode: [
            results.loc[results["mode"] == mode, PRIMARY_METRIC].mean() for results in per_repeat
        ]
        for mode in MODES
    }
    rows = {mode: mean_ci(values) for mode, values in means.items()}
    rows["finetune - individual"] = paired_difference_ci(means["finetune"], means["individual"])
    return pd.DataFrame.from_dict({name: vars(ci) for name, ci in rows.items()}, orient="index")


def repeats_note(table: pd.DataFrame) -> str:
    """One sentence of `over_repeats`: each arm's and the difference's mean and interval."""
    cells = {
        name: f"{mean:.4f} [{low:.4f}, {high:.4f}]"
        for name, mean, low, high in table[["mean", "low", "high"]].itertuples()
    }
    return (
        "Mean test balanced accuracy over patients, mean over repeats with its 95% t interval: "
        f"individual {cells['individual']}, fine-tuned {cells['finetune']}; fine-tuned minus "
        f"individual, paired by repeat, {cells['finetune - individual']}."
    )


def comparison_metrics(comparison: Comparison) -> dict[str, float]:
    """Mean, median and std of each mode's test balanced accuracy, the test, missing counts."""
    metrics = {
        f"{mode}_balanced_accuracy_{statistic}": comparison.summary.loc[
            f"{mode}_balanced_accuracy", statistic
        ]
        for mode in MODES
        for statistic in ("mean", "median", "std")
    }
    metrics |= {"wilcoxon_statistic": comparison.wilcoxon_statistic}
    metrics |= {"wilcoxon_pvalue": comparison.wilcoxon_pvalue}
    metrics |= {f"missing_{mode}": len(found) for mode, found in comparison.missing.items()}
    return metrics | {"patients": len(comparison.table)}


def _paired_wilcoxon(finetuned: pd.Series, individual: pd.Series) -> tuple[float, float]:
    """Two-sided signed-rank test of fine-tuned vs individual; NaN when no pair differs."""
    differences = (finetuned - individual).round(12)
    if len(differences) == 0 or not differences.any():
        return math.nan, math.nan
    result = wilcoxon(differences)
    return float(result.statistic), float(result.pvalue)


def comparison_bars_figure(table: pd.DataFrame) -> Figure:
    """Horizontal bars of test balanced accuracy per patient, both modes (the study's Figure 12)."""
    fig = Figure(figsize=(7, 0.32 * len(table) + 1.5))
    ax = fig.subplots()
    positions = np.arange(len(table))
    height = 0.4
    for offset, mode in zip((-height / 2, height / 2), MODES, strict=True):
        values = table[f"{mode}_{PRIMARY_METRIC}"] * 100
        ax.barh(positions + offset, values, height=height, label=MODE_LABELS[mode])
    ax.set_yticks(positions, table.index)
    ax.invert_yaxis()
    ax.set_xlabel("test balanced accuracy (%)")
    ax.set_xlim(left=max(0.0, float(np.nanmin(table.filter(like=PRIMARY_METRIC).values)) * 100 - 5))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def histogram_figure(table: pd.DataFrame, mode: str) -> Figure:
    """Histogram of one mode's per-patient test balanced accuracy (the study's Figures 8 and 10)."""
    values = table[f"{mode}_{PRIMARY_METRIC}"].dropna() * 100
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(values, bins=np.arange(math.floor(values.min()), 101, 1.0), edgecolor="black")
    ax.axvline(values.mean(), color="red", linestyle="--", label=f"mean {values.mean():.1f}%")
    ax.set_xlabel("test balanced accuracy (%)")
    ax.set_ylabel("patients")
    ax.set_title(MODE_LABELS[mode])
    ax.legend()
    fig.tight_layout()
    return fig


def report_markdown(
    comparison: Comparison,
    title: str = "Individual vs fine-tuned",
    notes: Sequence[str] = (),
    figures: Sequence[str] = (),
) -> str:
    """The report as Markdown: notes, summary, Wilcoxon result, missing runs, the per-patient
    table, then links to the `figures` (file names beside it)."""
    summary = comparison.summary.to_markdown(floatfmt=".4f")
    lines = [f"# {title}", "", *(f"{note}  " for note in notes)]
    lines += ["", "## Summary over patients (test set)", "", summary, ""]
    lines += [
        "Paired Wilcoxon signed-rank test, fine-tuned vs individual test balanced accuracy: "
        f"statistic {comparison.wilcoxon_statistic:.1f}, p = {comparison.wilcoxon_pvalue:.3g}.",
        "",
    ]
    for mode, patients in comparison.missing.items():
        if patients:
            lines += [f"Missing {mode} runs: {', '.join(patients)}.", ""]
    lines += ["## Per patient", "", comparison.table.to_markdown(floatfmt=".4f"), ""]
    if figures:
        lines += ["## Figures", "", *(f"![{name}]({name})" for name in figures), ""]
    return "\n".join(lines)


def write_report(
    comparison: Comparison,
    out_dir: Path,
    extra_figures: Mapping[str, Figure] | None = None,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Write report.md, comparison.csv and the figures (a histogram per mode with results, and
    `extra_figures` by file name) into `out_dir`; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"comparison_bars.png": comparison_bars_figure(comparison.table)}
    for mode in MODES:
        if comparison.table[f"{mode}_{PRIMARY_METRIC}"].notna().any():
            figures[f"histogram_{mode}.png"] = histogram_figure(comparison.table, mode)
    figures |= dict(extra_figures or {})
    written = [out_dir / "report.md", out_dir / "comparison.csv"]
    written[0].write_text(report_markdown(comparison, notes=notes, figures=list(figures)))
    comparison.table.to_csv(written[1])
    for name, fig in figures.items():
        fig.savefig(out_dir / name, dpi=120)
        written.append(out_dir / name)
    return written
