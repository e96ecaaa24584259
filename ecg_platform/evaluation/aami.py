"""AAMI EC57 beat-class metrics from K x K confusion matrices (rows: true, columns: predicted).

Classes are indices with names passed in ("N", "S", "V", "F", "Q" for the `aami` label set), so
the per-class one-vs-rest metrics and macro F1 also work for a binary label set. VEB and SVEB
follow the counting of `bxb`, the reference comparator of ANSI/AAMI EC57 in the WFDB software
(docs/metrics.md quotes its lines): for VEB, F and Q beats called V are neither true nor false
positives; for SVEB, Q beats called S are not counted. Every ratio whose denominator is zero
is NaN, never a silent 0 (as in `metrics.py`, which computes the ratios).

Detected beats add `bxb`'s pseudo-class `O` (`MISSED`) as the last name: its column holds the
reference beats no detection matched (a missed V beat is a VEB false negative), its row the
detections no reference beat matched (one called V is a VEB false positive); a missed beat of
another class is counted nowhere, as in `bxb` (`evaluation/detection.py` builds such matrices).

Gross statistics pool the counts over records; average statistics are the mean of per-record
values over the records where the value is defined (WFDB `sumstats` skips the others too).
Figures in `arm_summary` are percentages, the mean over repeats with a 95% t interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix

from ecg_platform.data.labels import AAMI_CLASSES
from ecg_platform.data.protocols import LEAKAGE_FREE, NON_PACED
from ecg_platform.evaluation.intervals import mean_ci
from ecg_platform.evaluation.metrics import metrics_from_counts

# MIT-BIH records without the four paced ones (102, 104, 107, 217), and their 200-series.
RECORDS_44 = NON_PACED
RECORDS_24 = LEAKAGE_FREE
RECORD_SETS: Mapping[str, Sequence[str]] = {"44": RECORDS_44, "24": RECORDS_24}
SUMMARY_METRICS = ("acc", "se", "spe", "ppv", "f1")
MISSED = "O"  # bxb's pseudo-beat: no reference beat (row) or no detection (column) to pair with
MetricsByName = dict[str, dict[str, float]]  # class or statistic name -> metric -> value


@dataclass(frozen=True)
class EctopicRule:
    """The positive class of a statistic and the true classes whose beats called positive
    count nowhere (neither true nor false positives)."""

    positive: str
    uncounted: tuple[str, ...]


EC57_RULES: Mapping[str, EctopicRule] = {
    "VEB": EctopicRule("V", ("F", "Q")),  # bxb: VFP = Nv + Sv (+ Ov + Xv)
    "SVEB": EctopicRule("S", ("Q",)),  # bxb: SFP = Ns + Vs + Fs (+ Os + Xs)
}


@dataclass(frozen=True)
class Counts:
    """Beat counts of one statistic; `uncounted` beats enter none of tp, fp, fn, tn."""

    tp: int
    fp: int
    fn: int
    tn: int
    uncounted: int


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """The K x K matrix of class indices 0..K-1, absent classes included as zero rows.

    An index outside 0..K-1 is refused: scikit-learn would silently drop that beat."""
    labels = np.arange(n_classes)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        outside = np.setdiff1d(np.asarray(values), labels)
        if outside.size:
            raise ValueError(f"{name} holds class indices outside 0..{n_classes - 1}: {outside}")
    return confusion_matrix(y_true, y_pred, labels=labels)


def per_class_metrics(matrix: np.ndarray, class_names: Sequence[str]) -> MetricsByName:
    """One-vs-rest se, ppv, spe, fpr, acc and f1 per class name (fractions)."""
    counts = _checked(matrix, class_names)
    total = int(counts.sum())
    metrics = {}
    for index, name in enumerate(class_names):
        tp = int(counts[index, index])
        fn = int(counts[index].sum()) - tp
        fp = int(counts[:, index].sum()) - tp
        metrics[name] = ratios(Counts(tp, fp, fn, total - tp - fn - fp, 0))
    return metrics


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes where it is defined (present as truth or prediction)."""
    counts = np.asarray(matrix)
    names = [str(index) for index in range(counts.shape[0])]
    scores = [values["f1"] for values in per_class_metrics(counts, names).values()]
    return _nanmean(scores)


def ectopic_counts(matrix: np.ndarray, class_names: Sequence[str]) -> dict[str, Counts]:
    """VEB and SVEB counts under the EC57/bxb rules (the names must include "V" and "S")."""
    counts = _checked(matrix, class_names)
    return {task: _rule_counts(counts, class_names, rule) for task, rule in EC57_RULES.items()}


def veb_sveb(matrix: np.ndarray, class_names: Sequence[str]) -> MetricsByName:
    """VEB and SVEB se, ppv, spe, fpr, acc and f1 (fractions) of one matrix."""
    return {task: ratios(c) for task, c in ectopic_counts(matrix, class_names).items()}


def ratios(counts: Counts) -> dict[str, float]:
    """se, ppv, spe, fpr, acc and f1 of binary counts; NaN where a denominator is zero."""
    values = metrics_from_counts(tn=counts.tn, fp=counts.fp, fn=counts.fn, tp=counts.tp)
    negatives = counts.fp + counts.tn
    return {
        "se": values["sensitivity"],
        "ppv": values["precision"],
        "spe": values["specificity"],
        "fpr": counts.fp / negatives if negatives else math.nan,
        "acc": values["accuracy"],
        "f1": values["f1"],
    }


def gross(matrices: Iterable[np.ndarray], class_names: Sequence[str]) -> MetricsByName:
    """VEB/SVEB statistics of the counts pooled over records."""
    pooled = _pooled(matrices)
    return veb_sveb(pooled, class_names)


def average(matrices: Iterable[np.ndarray], class_names: Sequence[str]) -> MetricsByName:
    """VEB/SVEB statistics averaged over records; a record enters a statistic's mean only when
    the statistic is defined for it (e.g. VEB se only over records with V beats)."""
    per_record = [veb_sveb(matrix, class_names) for matrix in matrices]
    if not per_record:
        raise ValueError("average needs at least one record's confusion matrix")
    return {
        task: {metric: _nanmean([r[task][metric] for r in per_record]) for metric in values}
        for task, values in per_record[0].items()
    }


def arm_summary(
    repeats: Sequence[Mapping[str, np.ndarray]],
    class_names: Sequence[str] = AAMI_CLASSES,
    record_sets: Mapping[str, Sequence[str]] = RECORD_SETS,
    aggregate: str = "gross",
) -> dict[str, dict[str, dict[str, object]]]:
    """One arm's aami.json entry: per record set, VEB and SVEB acc/se/spe/ppv/f1 in percent,
    the mean over repeats, each with a `<metric>_ci` [low, high] 95% t interval (NaN bounds
    with one repeat). `repeats` holds one {record: confusion matrix} mapping per repeat."""
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {sorted(_AGGREGATES)}, got {aggregate!r}")
    statistic = _AGGREGATES[aggregate]
    if not repeats:
        raise ValueError("arm_summary needs at least one repeat")
    summary: dict[str, dict[str, dict[str, object]]] = {}
    for set_name, records in record_sets.items():
        per_repeat = [statistic(_select(repeat, records), class_names) for repeat in repeats]
        summary[set_name] = {
            task: _mean_with_ci([values[task] for values in per_repeat]) for task in EC57_RULES
        }
    return summary


def record_table(
    repeats: Sequence[Mapping[str, np.ndarray]], class_names: Sequence[str] = AAMI_CLASSES
) -> pd.DataFrame:
    """Per record: true beats per class and VEB/SVEB figures in percent (means over repeats,
    each over the repeats where it is defined). Every repeat must hold the same records."""
    records = sorted(repeats[0]) if repeats else []
    if any(sorted(repeat) != records for repeat in repeats):
        raise ValueError("every repeat needs a confusion matrix for the same records")
    rows = {}
    for record in records:
        matrices = [_checked(repeat[record], class_names) for repeat in repeats]
        row: dict[str, float] = {
            name: float(np.mean([m[index].sum() for m in matrices]))
            for index, name in enumerate(class_names)
        }
        per_repeat = [veb_sveb(matrix, class_names) for matrix in matrices]
        for task in EC57_RULES:
            for metric in SUMMARY_METRICS:
                percents = [100 * statistics[task][metric] for statistics in per_repeat]
                row[f"{task}_{metric}"] = _nanmean(percents)
        rows[record] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "record"
    return table


def _rule_counts(counts: np.ndarray, names: Sequence[str], rule: EctopicRule) -> Counts:
    if rule.positive not in names:
        raise ValueError(f"VEB/SVEB need the AAMI classes; {rule.positive!r} is not in {names}")
    positive = list(names).index(rule.positive)
    uncounted_rows = [i for i, name in enumerate(names) if name in rule.uncounted]
    uncounted = int(counts[uncounted_rows, positive].sum())
    tp = int(counts[positive, positive])
    fn = int(counts[positive].sum()) - tp
    fp = int(counts[:, positive].sum()) - tp - uncounted
    if MISSED in names:  # bxb: a missed beat of another class is no true negative either
        missed = list(names).index(MISSED)
        uncounted += int(counts[:, missed].sum() - counts[positive, missed])
    tn = int(counts.sum()) - tp - fn - fp - uncounted
    return Counts(tp, fp, fn, tn, uncounted)


def _mean_with_ci(per_repeat: Sequence[Mapping[str, float]]) -> dict[str, object]:
    summary: dict[str, object] = {}
    for metric in SUMMARY_METRICS:
        interval = mean_ci([100 * values[metric] for values in per_repeat])
        summary[metric] = interval.mean
        summary[f"{metric}_ci"] = [interval.low, interval.high]
    return summary


def _select(repeat: Mapping[str, np.ndarray], records: Sequence[str]) -> list[np.ndarray]:
    missing = [record for record in records if record not in repeat]
    if missing:
        raise KeyError(f"no confusion matrix for records {', '.join(missing)}")
    return [repeat[record] for record in records]


def _pooled(matrices: Iterable[np.ndarray]) -> np.ndarray:
    stacked = [np.asarray(matrix) for matrix in matrices]
    if not stacked:
        raise ValueError("gross needs at least one record's confusion matrix")
    return np.sum(stacked, axis=0)


def _checked(matrix: np.ndarray, names: Sequence[str]) -> np.ndarray:
    counts = np.asarray(matrix)
    if counts.shape != (len(names), len(names)):
        raise ValueError(f"expected a {len(names)}x{len(names)} matrix, got shape {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("a confusion matrix holds counts, not negative numbers")
    return counts


def _nanmean(values: Sequence[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return float(np.mean(finite)) if finite else math.nan


_AGGREGATES: Mapping[str, Callable[..., MetricsByName]] = {
    "gross": gross,
    "average": average,
}
