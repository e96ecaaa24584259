"""Means and t intervals over repeats, and the paired Wilcoxon test: a printed t table, scipy
as the reference, a hand-worked signed-rank example and the undefined cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ecg_platform.evaluation.intervals import mean_ci, paired_difference_ci, paired_wilcoxon


def test_mean_ci_matches_the_t_table_and_scipy() -> None:
    # n = 2: mean 2, standard error 1, t(0.975, 1) = 12.706 (printed t tables)
    got = mean_ci([1.0, 3.0])
    assert (got.mean, got.n) == (2.0, 2)
    assert got.low == pytest.approx(2 - 12.706, abs=1e-3)
    assert got.high == pytest.approx(2 + 12.706, abs=1e-3)
    sample = np.array([91.2, 93.5, 92.1, 94.0, 90.8])
    got = mean_ci(sample)
    low, high = stats.t.interval(0.95, df=4, loc=sample.mean(), scale=stats.sem(sample))
    assert (got.low, got.high) == pytest.approx((low, high))


def test_mean_ci_undefined_and_degenerate_cases() -> None:
    one = mean_ci([93.0])
    assert one.mean == 93.0 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    assert math.isnan(mean_ci([]).mean)
    assert mean_ci([90.0, math.nan, 92.0]).n == 2  # an undefined repeat is left out
    same = mean_ci([95.0, 95.0, 95.0])
    assert (same.low, same.high) == (95.0, 95.0)


def test_paired_difference_ci() -> None:
    got = paired_difference_ci([3.0, 5.0, math.nan], [2.0, 2.0, 1.0])
    assert got.n == 2 and got.mean == pytest.approx(2.0)
    assert got.low == pytest.approx(2 - 12.706, abs=1e-3)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference_ci([1.0], [1.0, 2.0])


def test_wilcoxon_by_hand_with_mixed_signs() -> None:
    # differences 1, -2, 3, 4: ranks 1..4, W- = 2; P(W <= 2) = 3/16 of the 16 sign patterns,
    # two-sided 6/16
    got = paired_wilcoxon([2.0, 0.0, 6.0, 9.0], [1.0, 2.0, 3.0, 5.0])
    assert (got.statistic, got.pvalue) == (2.0, pytest.approx(0.375))
    assert (got.n_pairs, got.n_nonzero) == (4, 4)


def test_wilcoxon_with_zeros_and_ties_matches_scipy() -> None:
    a = np.array([0.91, 0.95, 0.88, 0.97, 0.93, 0.90, 0.99, 0.85])
    b = np.array([0.91, 0.93, 0.90, 0.95, 0.90, 0.88, 0.96, 0.86])
    got = paired_wilcoxon(a, b)
    expected = stats.wilcoxon(np.round(a - b, 12))
    assert got.n_nonzero == 7
    assert (got.statistic, got.pvalue) == pytest.approx((expected.statistic, expected.pvalue))


def test_wilcoxon_without_any_difference_is_undefined() -> None:
    got = paired_wilcoxon([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert math.isnan(got.statistic) and math.isnan(got.pvalue) and got.n_nonzero == 0
