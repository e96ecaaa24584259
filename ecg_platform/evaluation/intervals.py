"""Uncertainty over repeats: t-based confidence intervals and the paired signed-rank test.

A study repeated with several seeds gives one value per repeat; the report states their mean
and a 95% Student-t interval (scipy.stats.t), the interval of a paired difference, and the
paired Wilcoxon signed-rank test (scipy.stats.wilcoxon). Undefined stays undefined: one finite
value has no interval (NaN bounds), and when no pair differs the signed-rank test has nothing
to rank, so its statistic and p-value are NaN rather than scipy's warning and p = 1.
NaN inputs (a metric undefined in some repeat) are left out and `n` says how many remained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean of `n` finite values and its two-sided t interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    """Two-sided Wilcoxon signed-rank test of paired values; `n_nonzero` pairs were ranked."""

    statistic: float
    pvalue: float
    n_pairs: int
    n_nonzero: int


def mean_ci(values: ArrayLike, confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval of the finite values (t with n - 1 degrees of freedom)."""
    finite = _finite(values)
    n = finite.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(finite.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    sem = float(stats.sem(finite))
    if sem == 0.0:  # identical values: the interval collapses onto the mean (scipy gives NaN)
        return Interval(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n)


def paired_difference_ci(a: ArrayLike, b: ArrayLike, confidence: float = CONFIDENCE) -> Interval:
    """Mean and t interval of `a - b` over the pairs where both values are finite."""
    return mean_ci(_paired_differences(a, b), confidence)


def paired_wilcoxon(a: ArrayLike, b: ArrayLike) -> PairedTest:
    """Signed-rank test of `a - b` (scipy's default: zero differences dropped, exact p-value
    for small samples without ties, normal approximation otherwise); NaN when no pair differs."""
    differences = np.round(_paired_differences(a, b), 12)  # float noise is no difference
    nonzero = int(np.count_nonzero(differences))
    if nonzero == 0:
        return PairedTest(math.nan, math.nan, differences.size, 0)
    result = stats.wilcoxon(differences)
    return PairedTest(float(result.statistic), float(result.pvalue), differences.size, nonzero)


def _finite(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _paired_differences(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    first = np.asarray(a, dtype=np.float64).ravel()
    second = np.asarray(b, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise ValueError(f"paired values need equal lengths, got {first.size} and {second.size}")
    both = np.isfinite(first) & np.isfinite(second)
    return first[both] - second[both]
