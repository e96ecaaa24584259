"""The comparison report: pivoting, missing runs, the paired Wilcoxon test, written artefacts."""

from __future__ import annotations

import itertools
import math
import re

import pandas as pd
import pytest
from scipy.stats import wilcoxon

from ecg_platform.evaluation.comparison import compare, over_repeats, repeats_note, write_report


def _results(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Long results with individual/finetune balanced accuracy per patient."""
    records = []
    for patient, (individual, finetuned) in rows.items():
        for mode, value in (("individual", individual), ("finetune", finetuned)):
            if math.isnan(value):
                continue
            records.append(
                {
                    "patient": patient,
                    "mode": mode,
                    "windows": 1000,
                    "abnormal_share": 0.1,
                    "balanced_accuracy": value,
                    "sensitivity": value,
                    "specificity": 1.0,
                    "f1": value,
                    "epochs": 12,
                }
            )
    return pd.DataFrame.from_records(records)


SIX_BETTER = {str(100 + i): (0.80 + i / 100, 0.90 + i / 100 + i / 1000) for i in range(6)}


def test_compare_pivots_one_row_per_patient_in_requested_order() -> None:
    patients = sorted(SIX_BETTER, reverse=True)
    comparison = compare(_results(SIX_BETTER), patients)
    assert list(comparison.table.index) == patients
    assert comparison.table.loc["102", "individual_balanced_accuracy"] == pytest.approx(0.82)
    assert comparison.table.loc["102", "finetune_balanced_accuracy"] == pytest.approx(0.922)
    assert comparison.summary.loc["individual_balanced_accuracy", "mean"] == pytest.approx(0.825)
    assert comparison.missing == {"individual": [], "finetune": []}


def test_wilcoxon_exact_p_value_when_every_patient_improves() -> None:
    comparison = compare(_results(SIX_BETTER), sorted(SIX_BETTER))
    # n = 6, all differences positive: W = 0 and exact two-sided p = 2 / 2**6.
    assert comparison.wilcoxon_statistic == 0.0
    assert comparison.wilcoxon_pvalue == pytest.approx(2 / 64)


def test_wilcoxon_is_nan_when_nothing_differs() -> None:
    same = {"100": (0.9, 0.9), "101": (0.8, 0.8)}
    comparison = compare(_results(same), sorted(same))
    assert math.isnan(comparison.wilcoxon_pvalue)


def _exact_two_sided_p(ranks: list[float], statistic: float) -> float:
    """The signed-rank test's exact p-value by enumerating every sign of every rank."""
    sums = [sum(signs) for signs in itertools.product(*[(0, rank) for rank in ranks])]
    return min(1.0, 2 * sum(total <= statistic for total in sums) / len(sums))


def test_wilcoxon_with_mixed_signs_is_the_exact_signed_rank_test() -> None:
    """Differences +.05 -.01 +.03 +.02 -.04 +.06: ranks 5 1 3 2 4 6, the negative ones sum to
    W = 5; the p-value is the share of the 64 sign patterns whose sum is as small, twice."""
    differences = [0.05, -0.01, 0.03, 0.02, -0.04, 0.06]
    rows = {str(100 + i): (0.5, 0.5 + d) for i, d in enumerate(differences)}
    comparison = compare(_results(rows), sorted(rows))
    assert comparison.wilcoxon_statistic == 5.0
    assert comparison.wilcoxon_pvalue == pytest.approx(_exact_two_sided_p([1, 2, 3, 4, 5, 6], 5))
    assert comparison.wilcoxon_pvalue == pytest.approx(2 * 10 / 64)


def test_wilcoxon_drops_zero_differences_and_gives_ties_their_mean_rank() -> None:
    """What the accuracies mean, not their float noise: 0.1 + 0.2 against 0.3 is no difference
    (dropped), and 0.82 - 0.80, 0.92 - 0.90 and 0.68 - 0.70 tie (mean rank 2), though float
    subtraction makes them all differ. W = 2 + 7 = 9 of 7 ranks; the p-value is scipy's for the
    intended differences."""
    rows = {  # patient: (individual, finetuned), intended difference
        "100": (0.80, 0.82),  # +0.02
        "101": (0.90, 0.92),  # +0.02
        "102": (0.70, 0.68),  # -0.02
        "103": (0.3, 0.1 + 0.2),  # 0
        "104": (0.60, 0.65),  # +0.05
        "105": (0.85, 0.75),  # -0.10
        "106": (0.50, 0.53),  # +0.03
        "107": (0.40, 0.47),  # +0.07
    }
    raw = [finetuned - individual for individual, finetuned in rows.values()]
    assert wilcoxon(raw).statistic == 10.5  # the float noise, ranked as if it were real
    comparison = compare(_results(rows), sorted(rows))
    intended = [0.02, 0.02, -0.02, 0.0, 0.05, -0.10, 0.03, 0.07]
    expected = wilcoxon(intended)
    assert comparison.wilcoxon_statistic == expected.statistic == 9.0
    assert comparison.wilcoxon_pvalue == pytest.approx(expected.pvalue, rel=1e-12)


def test_missing_runs_are_listed_and_excluded_from_the_paired_test() -> None:
    rows = dict(SIX_BETTER) | {"200": (0.7, math.nan)}
    comparison = compare(_results(rows), [*sorted(SIX_BETTER), "200", "300"])
    assert comparison.missing == {"individual": ["300"], "finetune": ["200", "300"]}
    assert comparison.wilcoxon_pvalue == pytest.approx(2 / 64)


def test_write_report_produces_markdown_csv_and_figures(tmp_path) -> None:
    comparison = compare(_results(SIX_BETTER), sorted(SIX_BETTER))
    written = write_report(comparison, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == [
        "comparison.csv",
        "comparison_bars.png",
        "histogram_finetune.png",
        "histogram_individual.png",
        "report.md",
    ]
    assert all(p.stat().st_size > 0 for p in written)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "p = 0.0312" in text
    assert re.search(r"^\|\s+105 \|\s+1000 \|", text, flags=re.MULTILINE)
    csv = pd.read_csv(tmp_path / "out" / "comparison.csv", dtype={"patient": str})
    assert list(csv["patient"]) == sorted(SIX_BETTER)


def test_a_mode_without_any_run_gets_no_histogram_and_is_listed_missing(tmp_path) -> None:
    individual_only = _results({p: (a, math.nan) for p, (a, _) in SIX_BETTER.items()})
    comparison = compare(individual_only, sorted(SIX_BETTER))
    written = write_report(comparison, tmp_path)
    assert "histogram_finetune.png" not in {p.name for p in written}
    assert "histogram_individual.png" in {p.name for p in written}
    assert comparison.missing["finetune"] == sorted(SIX_BETTER)
    assert math.isnan(comparison.wilcoxon_pvalue)


def test_compare_keeps_the_metrics_the_runs_have() -> None:
    """K-class runs log macro F1, not sensitivity: the table compares what is there."""
    results = _results(SIX_BETTER).drop(columns=["sensitivity", "specificity", "f1"])
    results["macro_f1"] = results["balanced_accuracy"] - 0.1
    comparison = compare(results, sorted(SIX_BETTER))
    assert "finetune_sensitivity" not in comparison.table
    assert comparison.table.loc["102", "finetune_macro_f1"] == pytest.approx(0.822)
    assert comparison.summary.loc["individual_macro_f1", "mean"] == pytest.approx(0.725)


def test_over_repeats_gives_each_arms_interval_and_the_paired_difference() -> None:
    """Three repeats of two patients, checked by hand: arm means 0.80/0.82/0.84 (individual)
    and 0.90/0.91/0.95 (fine-tuned); t(0.975, 2) = 4.302653."""
    repeats = [
        _results({"100": (0.78, 0.90), "101": (0.82, 0.90)}),
        _results({"100": (0.80, 0.92), "101": (0.84, 0.90)}),
        _results({"100": (0.84, 0.94), "101": (0.84, 0.96)}),
    ]
    table = over_repeats(repeats)
    t = 4.302653
    individual = table.loc["individual"]
    assert individual["mean"] == pytest.approx(0.82)
    assert individual["high"] - individual["mean"] == pytest.approx(t * 0.02 / 3**0.5, rel=1e-5)
    assert table.loc["finetune", "mean"] == pytest.approx(0.92)
    difference = table.loc["finetune - individual"]  # 0.10, 0.09, 0.11: sd 0.01
    assert difference["mean"] == pytest.approx(0.10)
    assert difference["low"] == pytest.approx(0.10 - t * 0.01 / 3**0.5, rel=1e-5)
    assert list(table["n"]) == [3, 3, 3]
    note = repeats_note(table)
    assert "individual 0.8200 [" in note and "paired by repeat, 0.1000 [" in note
