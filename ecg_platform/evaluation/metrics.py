"""Classification metrics from one confusion matrix: binary at a threshold (1 = abnormal), or
K classes by the most probable class; `classification_metrics` picks by the probabilities' shape.

Each matrix is one `np.bincount` (empty input included); ROC AUC is scikit-learn's, and the
tests check every ratio and matrix against scikit-learn's own function.

Degenerate cases are defined, not guessed: every ratio whose denominator is zero is NaN
("undefined"), never a silent 0 or 1. So with no abnormal windows sensitivity is NaN; with no
predicted abnormal precision is NaN; F1 = 2tp / (2tp + fp + fn) is NaN only when there are
neither true nor predicted abnormal windows. Balanced accuracy is the mean recall over the classes
present (sensitivity and/or specificity), as scikit-learn defines it. ROC AUC needs both classes,
and finite probabilities, so it is NaN otherwise. K classes: a class never true has recall NaN,
one never predicted precision NaN; balanced accuracy and macro F1 average the defined values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from ecg_platform.errors import EcgPlatformError

COUNT_KEYS = ("tn", "fp", "fn", "tp")


BINARY_SUMMARY = ("balanced_accuracy", "sensitivity", "specificity", "f1")
MULTICLASS_SUMMARY = ("balanced_accuracy", "macro_f1", "accuracy")


def summary_metric_names(classes: int) -> tuple[str, ...]:
    """The test metrics a report compares per run: those the run's metrics function logs for
    `classes` classes (sensitivity and specificity exist only for two)."""
    return BINARY_SUMMARY if classes == 2 else MULTICLASS_SUMMARY


def classification_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, threshold: float = 0.5, loss: float | None = None
) -> dict[str, float]:
    """The metrics of the model's output size: `binary_metrics` for (n,) probabilities of class
    1 (at `threshold`), `multiclass_metrics` for (n, K) class probabilities (no threshold)."""
    if np.ndim(y_prob) == 2:
        return multiclass_metrics(y_true, y_prob, loss)
    return binary_metrics(y_true, y_prob, threshold, loss)


def metrics_from_counts(tn: int, fp: int, fn: int, tp: int) -> dict[str, float]:
    """Balanced accuracy, accuracy, sensitivity, specificity, precision and F1 of a matrix."""
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    return {
        "balanced_accuracy": _mean_defined([sensitivity, specificity]),
        "accuracy": _ratio(tp + tn, tn + fp + fn + tp),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def binary_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, threshold: float = 0.5, loss: float | None = None
) -> dict[str, float]:
    """`loss` (when given), the ratios of `metrics_from_counts`, `roc_auc`, and tn/fp/fn/tp.

    A window is predicted abnormal when its probability is >= `threshold`."""
    truth = np.asarray(y_true).astype(np.int64).ravel()
    prob = np.asarray(y_prob, dtype=np.float64).ravel()
    predicted = (prob >= threshold).astype(np.int64)
    if np.any((truth != 0) & (truth != 1)):
        raise ValueError("binary_metrics needs labels 0 (normal) and 1 (abnormal)")
    tn, fp, fn, tp = (int(c) for c in np.bincount(2 * truth + predicted, minlength=4))
    auc_defined = 0 < tp + fn < truth.size and bool(np.isfinite(prob).all())
    metrics = {} if loss is None else {"loss": float(loss)}
    metrics |= metrics_from_counts(tn, fp, fn, tp)
    metrics["roc_auc"] = float(roc_auc_score(truth, prob)) if auc_defined else math.nan
    metrics |= {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    return metrics


def multiclass_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, loss: float | None = None
) -> dict[str, float]:
    """`loss` (when given) and `metrics_from_matrix` of (n, K) class probabilities; a window is
    predicted as its most probable class (the first on ties)."""
    prob = np.asarray(y_prob, dtype=np.float64)
    classes = prob.shape[1]
    truth = np.asarray(y_true).astype(np.int64).ravel()
    if np.any((truth < 0) | (truth >= classes)):
        raise ValueError(f"multiclass_metrics needs labels 0..{classes - 1}")
    cells = classes * truth + prob.argmax(axis=1)
    matrix = np.bincount(cells, minlength=classes * classes).reshape(classes, classes)
    metrics = {} if loss is None else {"loss": float(loss)}
    return metrics | metrics_from_matrix(matrix)


def metrics_from_matrix(matrix: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, per-class recall and precision (`recall_0`, ...),
    and every cell as `confusion_<true>_<predicted>` of a K x K matrix (rows: true class)."""
    correct, true, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    recall = [_ratio(c, t) for c, t in zip(correct, true, strict=True)]
    precision = [_ratio(c, p) for c, p in zip(correct, predicted, strict=True)]
    f1 = [_ratio(2 * c, t + p) for c, t, p in zip(correct, true, predicted, strict=True)]
    metrics = {
        "accuracy": _ratio(correct.sum(), matrix.sum()),
        "balanced_accuracy": _mean_defined(recall),
        "macro_f1": _mean_defined(f1),
    }
    metrics |= {f"recall_{k}": value for k, value in enumerate(recall)}
    metrics |= {f"precision_{k}": value for k, value in enumerate(precision)}
    rows, columns = matrix.shape
    metrics |= {
        f"confusion_{i}_{j}": int(matrix[i, j]) for i in range(rows) for j in range(columns)
    }
    return metrics


def matrix_from_metrics(metrics: Mapping[str, float], prefix: str = "") -> np.ndarray:
    """The K x K confusion matrix back from its `<prefix>confusion_<true>_<predicted>` entries
    (e.g. a run's logged `test_confusion_*` metrics)."""
    cells = {
        tuple(int(index) for index in key.removeprefix(f"{prefix}confusion_").split("_")): value
        for key, value in metrics.items()
        if key.startswith(f"{prefix}confusion_")
    }
    if not cells:
        raise EcgPlatformError(f"no {prefix}confusion_* entries: not a K-class result")
    size = max(max(index) for index in cells) + 1
    matrix = np.zeros((size, size), dtype=np.int64)
    for (true, predicted), value in cells.items():
        matrix[true, predicted] = int(value)
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _mean_defined(values: list[float]) -> float:
    """The mean of the values that are not NaN; NaN when none is."""
    defined = [value for value in values if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan
