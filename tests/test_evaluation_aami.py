"""AAMI EC57 metrics, the arm summary, the K-class figure and the published table: hand-checked
matrices, scikit-learn as the reference, and the undefined cases."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from ecg_platform.evaluation.aami import (
    AAMI_CLASSES,
    RECORD_SETS,
    arm_summary,
    average,
    confusion,
    ectopic_counts,
    gross,
    macro_f1,
    per_class_metrics,
    record_table,
    veb_sveb,
)
from ecg_platform.evaluation.plots import confusion_matrix_figure_k
from ecg_platform.evaluation.published import (
    PUBLISHED,
    accuracy_fits,
    f1_from,
    side_by_side_markdown,
)

# Rows: true N, S, V, F, Q; columns: predicted n, s, v, f, q. 1,090 beats.
HAND = np.array(
    [
        [900, 10, 5, 3, 2],  # N: 920
        [8, 40, 2, 0, 0],  # S: 50
        [4, 1, 80, 3, 2],  # V: 90
        [2, 1, 6, 10, 1],  # F: 20
        [1, 2, 3, 0, 4],  # Q: 10
    ]
)


def matrix(**cells: int) -> np.ndarray:
    """A 5x5 AAMI matrix from cells named like bxb's counters: Nn=100, Vs=2, ..."""
    counts = np.zeros((5, 5), dtype=np.int64)
    for name, count in cells.items():
        counts[AAMI_CLASSES.index(name[0]), AAMI_CLASSES.index(name[1].upper())] = count
    return counts


def test_veb_by_hand() -> None:
    # TP = Vv = 80; FN = Vn + Vs + Vf + Vq = 4 + 1 + 3 + 2 = 10; FP = Nv + Sv = 5 + 2 = 7;
    # Fv + Qv = 6 + 3 = 9 count nowhere; TN = 1090 - 80 - 10 - 7 - 9 = 984
    # (= rows N, S, F, Q without column v: 915 + 48 + 14 + 7).
    counts = ectopic_counts(HAND, AAMI_CLASSES)["VEB"]
    assert (counts.tp, counts.fn, counts.fp, counts.tn, counts.uncounted) == (80, 10, 7, 984, 9)
    got = veb_sveb(HAND, AAMI_CLASSES)["VEB"]
    assert got["se"] == pytest.approx(80 / 90)
    assert got["ppv"] == pytest.approx(80 / 87)
    assert got["spe"] == pytest.approx(984 / 991)
    assert got["fpr"] == pytest.approx(7 / 991)
    assert got["acc"] == pytest.approx(1064 / 1081)
    assert got["f1"] == pytest.approx(160 / 177)


def test_sveb_by_hand() -> None:
    # TP = Ss = 40; FN = Sn + Sv + Sf + Sq = 8 + 2 + 0 + 0 = 10; FP = Ns + Vs + Fs = 10 + 1 + 1
    # = 12; Qs = 2 counts nowhere; TN = 1090 - 40 - 10 - 12 - 2 = 1026
    # (= rows N, V, F, Q without column s: 910 + 89 + 19 + 8).
    counts = ectopic_counts(HAND, AAMI_CLASSES)["SVEB"]
    assert (counts.tp, counts.fn, counts.fp, counts.tn, counts.uncounted) == (40, 10, 12, 1026, 2)
    got = veb_sveb(HAND, AAMI_CLASSES)["SVEB"]
    assert got["se"] == pytest.approx(40 / 50)
    assert got["ppv"] == pytest.approx(40 / 52)
    assert got["spe"] == pytest.approx(1026 / 1038)
    assert got["acc"] == pytest.approx(1066 / 1088)
    assert got["f1"] == pytest.approx(80 / 102)


def test_f_or_q_called_v_is_no_veb_false_positive() -> None:
    before = veb_sveb(HAND, AAMI_CLASSES)["VEB"]
    more = HAND.copy()
    more[3, 2] += 50  # F called V
    more[4, 2] += 50  # Q called V
    after = veb_sveb(more, AAMI_CLASSES)["VEB"]
    assert after == pytest.approx(before)
    assert ectopic_counts(more, AAMI_CLASSES)["VEB"].uncounted == 109
    # one-vs-rest V precision does count them (column v: 5 + 2 + 80 + 56 + 53 = 196),
    # and N called V is a VEB false positive
    assert per_class_metrics(more, AAMI_CLASSES)["V"]["ppv"] == pytest.approx(80 / 196)
    more[0, 2] += 13
    assert veb_sveb(more, AAMI_CLASSES)["VEB"]["ppv"] == pytest.approx(80 / 100)


def test_q_called_s_is_no_sveb_false_positive_but_f_called_s_is() -> None:
    before = veb_sveb(HAND, AAMI_CLASSES)["SVEB"]["ppv"]
    more = HAND.copy()
    more[4, 1] += 30
    assert veb_sveb(more, AAMI_CLASSES)["SVEB"]["ppv"] == pytest.approx(before)
    more[3, 1] += 28
    assert veb_sveb(more, AAMI_CLASSES)["SVEB"]["ppv"] == pytest.approx(40 / 80)


def test_veb_sveb_need_the_aami_classes() -> None:
    with pytest.raises(ValueError, match="'V' is not in"):
        veb_sveb(np.eye(2, dtype=int), ["normal", "abnormal"])
    with pytest.raises(ValueError, match="5x5"):
        veb_sveb(np.eye(4, dtype=int), AAMI_CLASSES)


def test_per_class_metrics_against_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    y_true = rng.choice(4, size=400, p=[0.7, 0.1, 0.15, 0.05])  # class 4 (Q) never occurs
    y_pred = np.where(rng.random(400) < 0.8, y_true, rng.integers(0, 5, 400))
    y_pred[:3] = 4  # ...but is predicted three times
    counts = confusion(y_true, y_pred, 5)
    assert counts.shape == (5, 5) and counts.sum() == 400
    got = per_class_metrics(counts, AAMI_CLASSES)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=range(5), zero_division=np.nan
    )
    for index, name in enumerate(AAMI_CLASSES):
        is_true, is_pred = y_true == index, y_pred == index
        np.testing.assert_allclose(
            [got[name]["se"], got[name]["ppv"], got[name]["f1"]],
            [recall[index], precision[index], f1[index]],
        )
        assert got[name]["spe"] == pytest.approx(skm.recall_score(~is_true, ~is_pred))
        assert got[name]["acc"] == pytest.approx(skm.accuracy_score(is_true, is_pred))
        assert got[name]["fpr"] == pytest.approx(1 - got[name]["spe"])
    assert math.isnan(got["Q"]["se"]) and got["Q"]["ppv"] == 0.0  # no Q beats; 3 wrong calls
    sklearn_macro = skm.f1_score(
        y_true, y_pred, labels=range(5), average="macro", zero_division=np.nan
    )
    assert macro_f1(counts) == pytest.approx(sklearn_macro)


def test_confusion_refuses_indices_it_would_drop() -> None:
    assert confusion([0, 2, 2], [0, 1, 2], 3).tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match=r"y_pred holds class indices outside 0..2: \[5\]"):
        confusion([0, 1], [0, 5], 3)


def test_empty_classes_are_nan_not_zero() -> None:
    counts = matrix(Nn=50, Vv=5, Vn=1)  # no S, F or Q beats, none predicted
    got = per_class_metrics(counts, AAMI_CLASSES)
    for name in ("S", "F", "Q"):
        assert all(math.isnan(got[name][key]) for key in ("se", "ppv", "f1"))
        assert got[name]["spe"] == 1.0
    sveb = veb_sveb(counts, AAMI_CLASSES)["SVEB"]
    assert math.isnan(sveb["se"]) and math.isnan(sveb["ppv"]) and math.isnan(sveb["f1"])
    # macro F1 averages the classes where F1 is defined: N 100/101, V 10/11
    assert macro_f1(counts) == pytest.approx((100 / 101 + 10 / 11) / 2)
    assert math.isnan(macro_f1(np.zeros((5, 5), dtype=int)))


def test_binary_label_set_works_for_per_class_metrics() -> None:
    counts = np.array([[5, 1], [1, 3]])  # tn 5, fp 1, fn 1, tp 3
    got = per_class_metrics(counts, ["normal", "abnormal"])
    assert got["abnormal"]["se"] == pytest.approx(3 / 4)
    assert got["abnormal"]["spe"] == pytest.approx(5 / 6)
    assert got["normal"]["se"] == pytest.approx(5 / 6)


def test_gross_pools_and_average_skips_undefined_records() -> None:
    a = matrix(Nn=100, Nv=2, Vv=8, Vn=2)  # VEB se 8/10, ppv 8/10; no S at all
    b = matrix(Nn=50, Vv=1, Vn=1, Ss=3, Sn=1, Ns=1)  # VEB se 1/2, ppv 1/1; SVEB 3/4, 3/4
    pooled = gross([a, b], AAMI_CLASSES)
    assert pooled["VEB"]["se"] == pytest.approx(9 / 12)
    assert pooled["VEB"]["ppv"] == pytest.approx(9 / 11)
    assert pooled["SVEB"]["se"] == pytest.approx(3 / 4)
    mean = average([a, b], AAMI_CLASSES)
    assert mean["VEB"]["se"] == pytest.approx((0.8 + 0.5) / 2)
    assert mean["VEB"]["ppv"] == pytest.approx((0.8 + 1.0) / 2)
    assert mean["SVEB"]["se"] == pytest.approx(3 / 4)  # record a has no S beats: left out
    with pytest.raises(ValueError, match="at least one"):
        gross([], AAMI_CLASSES)


def test_record_sets() -> None:
    records_44, records_24 = RECORD_SETS["44"], RECORD_SETS["24"]
    assert len(set(records_44)) == 44 and len(set(records_24)) == 24
    assert not {"102", "104", "107", "217"} & set(records_44)  # the paced records
    assert set(records_24) == {r for r in records_44 if 200 <= int(r) <= 234}


def test_arm_summary_means_and_intervals_over_repeats() -> None:
    a = matrix(Nn=100, Nv=2, Vv=8, Vn=2, Ss=1)
    b = matrix(Nn=50, Vv=1, Vn=1, Ss=3, Sn=1, Ns=1)
    b2 = matrix(Nn=50, Vv=2, Ss=2, Sn=2)
    sets = {"all": ["a", "b"], "b": ["b"]}
    summary = arm_summary([{"a": a, "b": b}, {"a": a, "b": b2}], AAMI_CLASSES, sets)
    se = [100 * 9 / 12, 100 * 10 / 12]  # gross VEB se of each repeat over both records
    veb = summary["all"]["VEB"]
    assert veb["se"] == pytest.approx(np.mean(se))
    half = stats.t.ppf(0.975, df=1) * np.std(se, ddof=1) / np.sqrt(2)
    assert veb["se_ci"] == pytest.approx([np.mean(se) - half, np.mean(se) + half])
    assert summary["b"]["SVEB"]["ppv"] == pytest.approx(100 * (3 / 4 + 2 / 2) / 2)
    assert set(veb) == {"acc", "se", "spe", "ppv", "f1"} | {
        f"{m}_ci" for m in ("acc", "se", "spe", "ppv", "f1")
    }
    single = arm_summary([{"a": a, "b": b}], AAMI_CLASSES, sets)["all"]["VEB"]
    assert single["se"] == pytest.approx(75.0) and all(math.isnan(x) for x in single["se_ci"])
    with pytest.raises(KeyError, match="no confusion matrix for records b"):
        arm_summary([{"a": a}], AAMI_CLASSES, sets)
    averaged = arm_summary([{"a": a, "b": b}], AAMI_CLASSES, sets, aggregate="average")
    assert averaged["all"]["VEB"]["se"] == pytest.approx(100 * (8 / 10 + 1 / 2) / 2)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        arm_summary([{"a": a, "b": b}], AAMI_CLASSES, sets, aggregate="median")


def test_record_table_per_record_means() -> None:
    a = matrix(Nn=100, Nv=2, Vv=8, Vn=2)
    table = record_table([{"100": a, "200": a}, {"100": a, "200": matrix(Nn=10, Vv=4)}])
    assert list(table.index) == ["100", "200"]
    assert table.loc["200", "V"] == pytest.approx((10 + 4) / 2)
    assert table.loc["200", "VEB_se"] == pytest.approx((80 + 100) / 2)
    assert math.isnan(table.loc["100", "SVEB_se"])
    with pytest.raises(ValueError, match="same records"):
        record_table([{"100": a}, {"200": a}])


def test_k_class_confusion_figure() -> None:
    figure = confusion_matrix_figure_k(HAND, AAMI_CLASSES, title="arm generic, 44 records")
    axes = figure.axes[0]
    texts = [text.get_text() for text in axes.texts]
    assert texts == [str(count) for count in HAND.ravel()]
    assert [label.get_text() for label in axes.get_xticklabels()] == list(AAMI_CLASSES)
    assert axes.get_title() == "arm generic, 44 records"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="5x5"):
        confusion_matrix_figure_k(np.eye(3), AAMI_CLASSES)


def test_published_figures_are_consistent_data() -> None:
    for result in PUBLISHED:
        given = {f"{task}.{metric}" for task, values in result.figures.items() for metric in values}
        assert result.verified <= given, result.study
        assert all(0 < v <= 100 for values in result.figures.values() for v in values.values())
    # Kiranyaz 2016 VEB: Acc 98.6 cannot lie between Se 95.0 and Spe 98.1
    kiranyaz = PUBLISHED[0].figures
    assert not accuracy_fits(kiranyaz["VEB"]) and accuracy_fits(kiranyaz["SVEB"])
    assert f1_from(95.0, 89.5) == pytest.approx(2 * 95.0 * 89.5 / 184.5)
    assert math.isnan(f1_from(0.0, 0.0))


def test_side_by_side_table() -> None:
    a = matrix(Nn=100, Nv=2, Vv=8, Vn=2, Ss=1)
    arms = {"generic": arm_summary([{"a": a}, {"a": a}], AAMI_CLASSES, {"44": ["a"]})}
    table = side_by_side_markdown(arms, record_set="44")
    lines = table.splitlines()
    assert lines[0].startswith("|  | protocol | VEB Se | VEB +P | VEB F1 |")
    ours = lines[2].split(" | ")
    assert ours[0] == "| generic" and ours[2] == "80.0 (80.0-80.0)"
    kiranyaz = next(line for line in lines if line.startswith("| Kiranyaz"))
    assert "| 95.0 * |" in kiranyaz and "92.2 (d) *" in kiranyaz and "98.6 * !" in kiranyaz
    niu = next(line for line in lines if line.startswith("| Niu"))
    assert "| 89.7 |" in niu  # checked against the abstract: no marker
    malik = next(line for line in lines if line.startswith("| Malik"))
    assert "| 99.04 |" in malik and "| 98.0 |" in malik
    assert len(lines) == 2 + 1 + len(PUBLISHED) + 2


def test_evaluation_layer_imports_neither_torch_nor_mlflow() -> None:
    code = (
        "import sys\n"
        "import ecg_platform.evaluation.aami, ecg_platform.evaluation.published\n"
        "import ecg_platform.evaluation.plots\n"
        "print(sorted(m for m in ('torch', 'mlflow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
