"""The AAMI part of a report on a beat preset: VEB and SVEB of each arm (generic, individual,
fine-tuned) as the literature computes them, beside the published state of the art.

Writes `aami.json` (the arms' gross VEB/SVEB figures per record set), `aami.md` (side-by-side
tables with the published figures), per-record tables and each arm's pooled confusion matrix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.protocols import DS2
from ecg_platform.evaluation.aami import RECORD_SETS, arm_summary, gross, record_table
from ecg_platform.evaluation.intervals import Interval, paired_difference_ci
from ecg_platform.evaluation.metrics import matrix_from_metrics
from ecg_platform.evaluation.plots import confusion_matrix_figure_k
from ecg_platform.evaluation.published import side_by_side_markdown
from ecg_platform.tracking.run_search import RunRecord, artifact_json
from ecg_platform.tracking.schema import GENERIC_CONFUSIONS_ARTIFACT

ARMS = ("generic", "individual", "finetune")
AAMI_JSON = "aami.json"
AAMI_MARKDOWN = "aami.md"

Matrices = dict[str, np.ndarray]  # one arm's test confusion matrix per patient


def arm_matrices(
    runs: Mapping[str, Mapping[str, RunRecord]], pretrain: RunRecord | None
) -> dict[str, Matrices]:
    """Each arm's per-patient test confusion matrices: the patient runs' logged
    `test_confusion_*` metrics, and the pretraining run's generic matrices."""
    arms: dict[str, Matrices] = {}
    if pretrain is not None:
        generic = artifact_json(pretrain.run_id, GENERIC_CONFUSIONS_ARTIFACT)
        if generic:
            arms["generic"] = {record: np.array(matrix) for record, matrix in generic.items()}
    for mode, by_patient in runs.items():
        arms[mode] = {
            patient: matrix_from_metrics(run.metrics, "test_")
            for patient, run in by_patient.items()
        }
    return arms


def record_sets(config: BeatConfig, patients: Sequence[str]) -> dict[str, list[str]]:
    """The record sets the figures are given on, each limited to the patients compared: all 44
    non-paced and the 24 records 200-234 that no common training set touches (patient-specific),
    or DS2 (inter-patient)."""
    wanted = {"DS2": DS2} if config.protocol == "inter-patient" else RECORD_SETS
    return {name: [r for r in records if r in patients] for name, records in wanted.items()}


@dataclass(frozen=True)
class AamiSummary:
    """The arms' gross VEB/SVEB per record set over the repeats, and the fine-tuned minus
    individual gross F1 differences: what `aami.json`, `aami.md` and the report's headline say."""

    config: BeatConfig
    patients: tuple[str, ...]
    sets: dict[str, list[str]]
    per_arm: dict[str, list[Matrices]]  # the arms present on every patient in every repeat
    summaries: dict[str, object]
    differences: dict[str, dict[str, Interval]]
    missing: list[str]
    repeats: int  # training seeds the figures pool

    def headline(self) -> str | None:
        """One sentence with the field's measure of the study's question (gross F1 on the
        first record set, fine-tuned minus individual, paired by repeat), None without both
        arms."""
        if not self.differences:
            return None
        name = next(iter(self.differences))
        parts = [f"{task} {_points(interval)}" for task, interval in self.differences[name].items()]
        return (
            f"Gross F1 (the field's measure) over record set {name} ({len(self.sets[name])} "
            f"records), fine-tuned minus individual, paired by repeat: {', '.join(parts)} points."
        )


def summarise_arms(
    repeats: Sequence[Mapping[str, Matrices]], config: BeatConfig, patients: Sequence[str]
) -> AamiSummary:
    """Summarise the arms present on every requested patient in every repeat (an arm missing
    one is reported, not silently shrunk). `repeats` holds one {arm: {patient: matrix}} per
    training seed."""
    sets = record_sets(config, patients)
    complete = [arm for arm in ARMS if all(_covers(repeat, arm, patients) for repeat in repeats)]
    per_arm = {arm: [repeat[arm] for repeat in repeats] for arm in complete}
    summaries: dict[str, object] = {
        arm: arm_summary(matrices, config.class_names, sets) for arm, matrices in per_arm.items()
    }
    differences = _f1_differences(per_arm, sets, config.class_names)
    missing = [arm for arm in ARMS if arm not in complete and any(arm in r for r in repeats)]
    return AamiSummary(
        config, tuple(patients), sets, per_arm, summaries, differences, missing, len(repeats)
    )


def write_aami_report(summary: AamiSummary, out_dir: Path) -> list[Path]:
    """aami.json, aami.md, per-record CSVs and confusion figures of `summary`'s arms."""
    config, patients = summary.config, summary.patients
    files = [out_dir / AAMI_JSON, out_dir / AAMI_MARKDOWN]
    files[0].write_text(json.dumps(_plain(summary.summaries), indent=2))
    files[1].write_text(_markdown(summary))
    for arm, matrices in summary.per_arm.items():
        table = out_dir / f"aami_records_{arm}.csv"
        record_table(matrices, config.class_names).round(2).to_csv(table)
        figure = out_dir / f"confusion_{arm}.png"
        pooled = sum(repeat[patient] for repeat in matrices for patient in patients)
        title = f"{arm}: test beats of {len(patients)} patients, {len(matrices)} repeat(s) pooled"
        confusion_matrix_figure_k(pooled, config.class_names, title).savefig(figure, dpi=120)
        files += [table, figure]
    return files


def _points(interval: Interval) -> str:
    """`+5.4 [4.7, 6.1]`, or the difference alone where one repeat gives no interval."""
    if math.isnan(interval.low):
        return f"{interval.mean:+.1f}"
    return f"{interval.mean:+.1f} [{interval.low:.1f}, {interval.high:.1f}]"


def _covers(repeat: Mapping[str, Matrices], arm: str, patients: Sequence[str]) -> bool:
    return arm in repeat and set(patients) <= set(repeat[arm])


def _f1_differences(
    per_arm: Mapping[str, Sequence[Matrices]],
    sets: Mapping[str, Sequence[str]],
    class_names: Sequence[str],
) -> dict[str, dict[str, Interval]]:
    """Per record set and task: gross F1 of fine-tuned minus individual, in points, paired by
    repeat (training seed): the mean and its 95% t interval."""
    if not {"finetune", "individual"} <= set(per_arm):
        return {}
    pairs = list(zip(per_arm["finetune"], per_arm["individual"], strict=True))
    differences: dict[str, dict[str, Interval]] = {}
    for name, records in sets.items():
        differences[name] = {}
        for task in ("VEB", "SVEB"):
            tuned, alone = (
                [
                    100 * gross([repeat[r] for r in records], class_names)[task]["f1"]
                    for repeat in arm
                ]
                for arm in zip(*pairs, strict=True)
            )
            differences[name][task] = paired_difference_ci(tuned, alone)
    return differences


def _markdown(summary: AamiSummary) -> str:
    config = summary.config
    lines = [
        f"# AAMI EC57: VEB and SVEB ({config.preset}, data config `{config.hash()}`)",
        "",
        f"Gross figures (counts pooled over records) in percent, mean of {summary.repeats} "
        "repeat(s) (training seeds) with the 95% t interval; docs/metrics.md gives the rules.",
    ]
    if summary.missing:
        lines.append(f"Left out, runs missing for some patients: {', '.join(summary.missing)}.")
    for name, records in summary.sets.items():
        lines += ["", f"## {name} records ({len(records)} here)", ""]
        if summary.summaries:
            lines.append(side_by_side_markdown(summary.summaries, name))
        if name in summary.differences:
            lines += ["", "Fine-tuned minus individual, gross F1 (points, paired by seed):", ""]
            lines += ["| task | mean | 95% interval |", "|---|---|---|"]
            for task, interval in summary.differences[name].items():
                lines.append(
                    f"| {task} | {interval.mean:.1f} | [{interval.low:.1f}, {interval.high:.1f}] |"
                )
    return "\n".join(lines) + "\n"


def _plain(value: object) -> object:
    """JSON with null where a figure is undefined (NaN is not JSON)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.floating | np.integer):
        return _plain(value.item())
    return value
