"""Published VEB/SVEB figures on MIT-BIH as typed data, and our arms side by side with them.

Every figure carries whether it was checked against its source (docs/metrics.md says where);
the table marks the unchecked ones, F1 values derived from a study's own Se and +P, and
accuracies that cannot be true: accuracy is a weighted mean of sensitivity and specificity
over the same beats, so it must lie between them (up to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TASKS = ("VEB", "SVEB")
COLUMNS = (("se", "Se"), ("ppv", "+P"), ("f1", "F1"), ("acc", "Acc"), ("spe", "Spe"))
ROUNDING = 0.05  # published figures carry one decimal


@dataclass(frozen=True)
class PublishedResult:
    """One study's percentages, `figures[task][metric]`, and which of them we checked
    (`verified` holds "VEB.se"-style keys)."""

    study: str
    citation: str
    protocol: str
    figures: Mapping[str, Mapping[str, float]]
    verified: frozenset[str] = field(default_factory=frozenset)
    note: str = ""


PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult(
        "Kiranyaz et al. 2016 (1D CNN)",
        "S. Kiranyaz, T. Ince, M. Gabbouj, Real-time patient-specific ECG classification by "
        "1-D convolutional neural networks, IEEE Trans. Biomed. Eng., 2016 (online Aug 2015)",
        "patient-specific, 44 records, gross",
        {
            "VEB": {"acc": 98.6, "se": 95.0, "spe": 98.1, "ppv": 89.5},
            "SVEB": {"acc": 96.4, "se": 64.6, "spe": 98.6, "ppv": 62.1},
        },
        note="figures from the issue; the abstract gives none",
    ),
    PublishedResult(
        "Ince et al. 2009 (MD-PSO ANN)",
        "T. Ince, S. Kiranyaz, M. Gabbouj, A generic and robust system for automated "
        "patient-specific classification of ECG signals, IEEE Trans. Biomed. Eng. 56(5), "
        "1415-1426, 2009",
        "patient-specific, 44 records, gross",
        {
            "VEB": {"acc": 98.0, "se": 84.6, "spe": 99.0, "ppv": 86.7},
            "SVEB": {"acc": 97.3, "se": 63.5, "spe": 98.3, "ppv": 53.7},
        },
        frozenset({"VEB.se", "SVEB.se"}),
        "the abstract gives average accuracy-sensitivity 98.3-84.6 (VEB), 97.4-63.5 (SVEB)",
    ),
    PublishedResult(
        "Jiang & Kong 2007 (BbNN)",
        "W. Jiang, S. G. Kong, Block-based neural networks for personalized ECG signal "
        "classification, IEEE Trans. Neural Netw. 18(6), 1750-1761, 2007",
        "patient-specific, 44 records, gross",
        {
            "VEB": {"acc": 97.7, "se": 86.6, "spe": 98.9, "ppv": 89.4},
            "SVEB": {"acc": 96.6, "se": 50.6, "spe": 98.8, "ppv": 68.0},
        },
        frozenset({"SVEB.acc"}),
        "the abstract gives average detection accuracies 98.1 (VEB), 96.6 (SVEB)",
    ),
    PublishedResult(
        "Zhai & Tin 2018 (2D CNN)",
        "X. Zhai, C. Tin, Automated ECG classification using dual heartbeat coupling based on "
        "convolutional neural network, IEEE Access, 27465-27472, 2018, "
        "doi:10.1109/ACCESS.2018.2833841",
        "patient-specific (common + patient beats)",
        {"VEB": {"se": 93.8, "ppv": 92.4}, "SVEB": {"se": 76.8, "ppv": 74.0}},
        note="figures from the issue; the abstract gives only gains over earlier methods",
    ),
    PublishedResult(
        "Malik et al. 2022 (1D Self-ONN)",
        "J. Malik, O. C. Devecioglu, S. Kiranyaz, T. Ince, M. Gabbouj, Real-time "
        "patient-specific ECG classification by 1D self-operational neural networks, IEEE "
        "Trans. Biomed. Eng., 2022, arXiv:2110.02215",
        "patient-specific, entire MIT-BIH, 'average'",
        {"VEB": {"acc": 99.04, "f1": 93.7}, "SVEB": {"acc": 98.0, "f1": 76.6}},
        frozenset({"VEB.acc", "VEB.f1", "SVEB.acc", "SVEB.f1"}),
    ),
    PublishedResult(
        "de Chazal et al. 2004 (LDA)",
        "P. de Chazal, M. O'Dwyer, R. B. Reilly, Automatic classification of heartbeats "
        "using ECG morphology and heartbeat interval features, IEEE Trans. Biomed. Eng. "
        "51(7), 1196-1206, 2004",
        "inter-patient, DS2 (22 records)",
        {"VEB": {"se": 77.7, "ppv": 81.9}, "SVEB": {"se": 75.9, "ppv": 38.5}},
        frozenset({"VEB.se", "VEB.ppv", "SVEB.se", "SVEB.ppv"}),
        "the abstract's figures; the issue rounds them to 77/82 and 76/38",
    ),
    PublishedResult(
        "Niu et al. 2020 (MPCNN)",
        "Niu et al., Inter-patient ECG classification with symbolic representations and "
        "multi-perspective convolutional neural networks, IEEE J. Biomed. Health Inform., "
        "doi:10.1109/JBHI.2019.2942938",
        "inter-patient, DS2 (22 records)",
        {"VEB": {"f1": 89.7}, "SVEB": {"f1": 76.6}},
        frozenset({"VEB.f1", "SVEB.f1"}),
    ),
)


def f1_from(se: float, ppv: float) -> float:
    """F1 = 2 TP / (2 TP + FP + FN) is the harmonic mean of Se and +P (any common scale)."""
    return 2 * se * ppv / (se + ppv) if se + ppv else math.nan


def accuracy_fits(figures: Mapping[str, float]) -> bool:
    """False when a published Acc lies outside [min(Se, Spe), max(Se, Spe)] beyond rounding;
    True when it fits or when Acc, Se or Spe is not given."""
    if not {"acc", "se", "spe"} <= figures.keys():
        return True
    low, high = sorted((figures["se"], figures["spe"]))
    return low - ROUNDING <= figures["acc"] <= high + ROUNDING


def side_by_side_markdown(
    arms: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]],
    record_set: str = "44",
    our_protocol: str = "this study, gross",
    published: Sequence[PublishedResult] = PUBLISHED,
) -> str:
    """A Markdown table: our arms (aami.json entries: mean, then the 95% interval) on
    `record_set`, then the published rows, VEB and SVEB Se, +P, F1, Acc, Spe in percent."""
    header = ["", "protocol"] + [f"{task} {label}" for task in TASKS for _, label in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, sets in arms.items():
        cells = [_ours(sets[record_set][task], metric) for task in TASKS for metric, _ in COLUMNS]
        lines.append(_row([arm, f"{our_protocol}, {record_set} records", *cells]))
    for result in published:
        cells = [_published(result, task, metric) for task in TASKS for metric, _ in COLUMNS]
        lines.append(_row([result.study, result.protocol, *cells]))
    legend = (
        "`*` not checked against the source (see docs/metrics.md); `(d)` F1 derived from the "
        "study's own Se and +P; `!` accuracy outside [Se, Spe], so it cannot be right; "
        "ours: mean over repeats (95% t interval)."
    )
    return "\n".join([*lines, "", legend])


def _ours(values: Mapping[str, Any], metric: str) -> str:
    mean = float(values[metric])
    low, high = (float(bound) for bound in values[f"{metric}_ci"])
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low):
        return f"{mean:.1f}"
    return f"{mean:.1f} ({low:.1f}-{high:.1f})"


def _published(result: PublishedResult, task: str, metric: str) -> str:
    figures = result.figures.get(task, {})
    keys = [f"{task}.{metric}"]
    if metric in figures:
        value = figures[metric]
        text = f"{value:.1f}" if round(value, 1) == value else f"{value:g}"  # as published
    elif metric == "f1" and {"se", "ppv"} <= figures.keys():
        text = f"{f1_from(figures['se'], figures['ppv']):.1f} (d)"
        keys = [f"{task}.se", f"{task}.ppv"]
    else:
        return "-"
    if not all(key in result.verified for key in keys):
        text += " *"
    if metric == "acc" and not accuracy_fits(figures):
        text += " !"
    return text


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
