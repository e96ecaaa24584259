"""Binary classification metrics at a threshold, from one confusion matrix (1 = abnormal).

The matrix is one `np.bincount`; ROC AUC is scikit-learn's, and the tests check every ratio
against scikit-learn's own function.

Degenerate cases are defined, not guessed: every ratio whose denominator is zero is NaN
("undefined"), never a silent 0 or 1. So with no abnormal windows sensitivity is NaN; with no
predicted abnormal precision is NaN; F1 = 2tp / (2tp + fp + fn) is NaN only when there are
neither true nor predicted abnormal windows. Balanced accuracy is the mean recall over the classes
present (sensitivity and/or specificity), as scikit-learn defines it. ROC AUC needs both classes,
and finite probabilities, so it is NaN otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

COUNT_KEYS = ("tn", "fp", "fn", "tp")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def metrics_from_counts(tn: int, fp: int, fn: int, tp: int) -> dict[str, float]:
    """Balanced accuracy, accuracy, sensitivity, specificity, precision and F1 of a matrix."""
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    recalls = [value for value in (sensitivity, specificity) if not math.isnan(value)]
    return {
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else math.nan,
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
