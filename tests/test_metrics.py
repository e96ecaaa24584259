"""Binary and K-class metrics against hand-computed confusion matrices, scikit-learn, and
degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from ecg_platform.evaluation.metrics import (
    binary_metrics,
    classification_metrics,
    metrics_from_counts,
    multiclass_metrics,
)


def test_hand_computed_matrix() -> None:
    # truth:     1    1    1    1    0    0    0    0    0    0
    # predicted: 1    1    1    0    1    0    0    0    0    0   -> tp 3, fn 1, fp 1, tn 5
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_prob = [0.9, 0.8, 0.5, 0.2, 0.7, 0.1, 0.3, 0.4, 0.0, 0.49]
    got = binary_metrics(y_true, y_prob, loss=0.25)
    assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (5, 1, 1, 3)
    assert got["loss"] == 0.25
    assert got["sensitivity"] == pytest.approx(3 / 4)
    assert got["specificity"] == pytest.approx(5 / 6)
    assert got["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    assert got["accuracy"] == pytest.approx(8 / 10)
    assert got["precision"] == pytest.approx(3 / 4)
    assert got["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # 24 positive-negative pairs; the positive ranks higher in all but 0.2 < 0.3, 0.4, 0.49, 0.7
    # and 0.5 < 0.7: 24 - 5 = 19 of them.
    assert got["roc_auc"] == pytest.approx(19 / 24)


def test_threshold_is_inclusive_and_configurable() -> None:
    assert binary_metrics([1, 0], [0.5, 0.49])["tp"] == 1
    strict = binary_metrics([1, 0], [0.5, 0.49], threshold=0.6)
    assert (strict["tp"], strict["fn"], strict["tn"]) == (0, 1, 1)


def test_loss_only_when_given() -> None:
    assert "loss" not in binary_metrics([0, 1], [0.2, 0.8])


def test_agrees_with_scikit_learn_on_random_predictions() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 500)
    y_prob = np.clip(0.3 * y_true + rng.random(500) * 0.7, 0, 1)
    y_pred = (y_prob >= 0.5).astype(int)
    got = binary_metrics(y_true, y_prob)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert got["sensitivity"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert got["specificity"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=0))
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, y_prob))


def test_no_abnormal_windows() -> None:
    got = binary_metrics([0, 0, 0, 0], [0.1, 0.7, 0.2, 0.3])
    assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (3, 1, 0, 0)
    assert math.isnan(got["sensitivity"])
    assert got["specificity"] == pytest.approx(0.75)
    assert got["balanced_accuracy"] == pytest.approx(0.75)  # mean over the classes present
    assert got["precision"] == 0.0  # one abnormal prediction, wrong
    assert got["f1"] == 0.0
    assert math.isnan(got["roc_auc"])


def test_no_normal_windows() -> None:
    got = binary_metrics([1, 1, 1], [0.9, 0.2, 0.6])
    assert math.isnan(got["specificity"])
    assert got["sensitivity"] == pytest.approx(2 / 3)
    assert got["balanced_accuracy"] == pytest.approx(2 / 3)
    assert got["precision"] == 1.0
    assert math.isnan(got["roc_auc"])


def test_only_normal_predicted() -> None:
    got = binary_metrics([1, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(got["precision"])  # no abnormal predictions: undefined, not 0
    assert got["sensitivity"] == 0.0
    assert got["f1"] == 0.0
    assert got["balanced_accuracy"] == pytest.approx(0.5)


def test_nothing_abnormal_anywhere_leaves_f1_undefined() -> None:
    got = metrics_from_counts(tn=4, fp=0, fn=0, tp=0)
    assert math.isnan(got["f1"]) and math.isnan(got["precision"])
    assert got["balanced_accuracy"] == 1.0


def test_empty_input_is_all_undefined() -> None:
    got = binary_metrics([], [])
    ratios = ("balanced_accuracy", "accuracy", "sensitivity", "specificity", "precision", "f1")
    assert all(math.isnan(got[name]) for name in (*ratios, "roc_auc"))


def test_nan_probabilities_leave_auc_undefined() -> None:
    assert math.isnan(binary_metrics([0, 1], [0.2, float("nan")])["roc_auc"])


def test_labels_other_than_zero_and_one_are_refused() -> None:
    with pytest.raises(ValueError, match="labels 0"):
        binary_metrics([0, 2], [0.1, 0.9])


def one_hot_probabilities(predicted: list[int], classes: int) -> np.ndarray:
    """Rows whose most probable class is `predicted` (0.6 there, the rest shared)."""
    rows = np.full((len(predicted), classes), 0.4 / (classes - 1))
    rows[np.arange(len(predicted)), predicted] = 0.6
    return rows


def test_multiclass_hand_computed_matrix() -> None:
    # truth:     0 0 0 0 1 1 1 2 2 2
    # predicted: 0 0 0 1 1 1 2 2 2 1
    #            true 0: [3 1 0]   recall 3/4, precision 3/3, F1 2*3 / (4 + 3) = 6/7
    #            true 1: [0 2 1]   recall 2/3, precision 2/4, F1 2*2 / (3 + 4) = 4/7
    #            true 2: [0 1 2]   recall 2/3, precision 2/3, F1 2*2 / (3 + 3) = 2/3
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    y_prob = one_hot_probabilities([0, 0, 0, 1, 1, 1, 2, 2, 2, 1], 3)
    y_prob[0] = [0.4, 0.4, 0.2]  # a tie goes to the first class
    got = multiclass_metrics(y_true, y_prob, loss=0.5)
    matrix = [[got[f"confusion_{i}_{j}"] for j in range(3)] for i in range(3)]
    assert matrix == [[3, 1, 0], [0, 2, 1], [0, 1, 2]]
    assert got["loss"] == 0.5
    assert got["accuracy"] == pytest.approx(7 / 10)
    assert [got[f"recall_{k}"] for k in range(3)] == pytest.approx([3 / 4, 2 / 3, 2 / 3])
    assert [got[f"precision_{k}"] for k in range(3)] == pytest.approx([1, 2 / 4, 2 / 3])
    assert got["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)
    assert got["macro_f1"] == pytest.approx((6 / 7 + 4 / 7 + 2 / 3) / 3)


def test_multiclass_agrees_with_scikit_learn_on_random_predictions() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, 400)
    y_prob = rng.random((400, 4)) + 0.8 * np.eye(4)[y_true]
    y_pred = y_prob.argmax(axis=1)
    got = multiclass_metrics(y_true, y_prob)
    labels = list(range(4))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    assert all(got[f"confusion_{i}_{j}"] == matrix[i, j] for i in labels for j in labels)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    recall = skm.recall_score(y_true, y_pred, labels=labels, average=None)
    precision = skm.precision_score(y_true, y_pred, labels=labels, average=None)
    assert [got[f"recall_{k}"] for k in labels] == pytest.approx(recall)
    assert [got[f"precision_{k}"] for k in labels] == pytest.approx(precision)


def test_multiclass_absent_classes_are_undefined_not_zero() -> None:
    # class 2 is never true and never predicted; class 1 is predicted once but never true
    y_true = [0, 0, 0, 3, 3]
    got = multiclass_metrics(y_true, one_hot_probabilities([0, 1, 0, 3, 0], 4))
    assert math.isnan(got["recall_1"]) and got["precision_1"] == 0.0
    assert math.isnan(got["recall_2"]) and math.isnan(got["precision_2"])
    assert got["recall_0"] == pytest.approx(2 / 3) and got["recall_3"] == pytest.approx(1 / 2)
    assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # classes present
    y_pred = [0, 1, 0, 3, 0]
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        expected = skm.balanced_accuracy_score(y_true, y_pred)  # and leaves them out
    assert got["balanced_accuracy"] == pytest.approx(expected)
    # F1 is defined for the classes true or predicted (0, 1, 3), as scikit-learn averages it
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))


def test_multiclass_empty_input_is_all_undefined() -> None:
    got = multiclass_metrics([], np.zeros((0, 3)))
    assert all(math.isnan(got[name]) for name in ("accuracy", "balanced_accuracy", "macro_f1"))
    assert all(got[f"confusion_{i}_{j}"] == 0 for i in range(3) for j in range(3))


def test_multiclass_labels_outside_the_classes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"labels 0\.\.2"):
        multiclass_metrics([0, 3], one_hot_probabilities([0, 1], 3))


def test_classification_metrics_dispatch_on_the_output_size() -> None:
    y_true, y_prob = [1, 0, 1], [0.7, 0.4, 0.55]
    binary = classification_metrics(y_true, y_prob, threshold=0.6, loss=0.3)
    assert binary == binary_metrics(y_true, y_prob, threshold=0.6, loss=0.3)
    assert (binary["tp"], binary["fn"]) == (1, 1)  # the threshold applies
    probs = one_hot_probabilities([1, 0, 2], 3)
    assert classification_metrics(y_true, probs, 0.6, 0.3) == multiclass_metrics(y_true, probs, 0.3)
