"""Per-record counts of a study (kept, normal, abnormal windows; selection) as JSON or a table."""

from __future__ import annotations

from typing import Any

from ecg_platform.data.dataset import StudyData


def study_summary(study: StudyData) -> dict[str, Any]:
    """Counts per record read, the selected ids, and totals over the selected records."""
    rows = [
        {
            "record": record,
            "windows": patient.n_windows,
            "normal": patient.n_normal,
            "abnormal": patient.n_abnormal,
            "abnormal_share": round(patient.abnormal_share, 6),
            "selected": record in study.selected,
        }
        for record, patient in sorted(study.patients.items())
    ]
    chosen = [study.patients[record] for record in study.selected]
    return {
        "records": rows,
        "selected": list(study.selected),
        "total_windows": sum(patient.n_windows for patient in chosen),
        "total_normal": sum(patient.n_normal for patient in chosen),
        "total_abnormal": sum(patient.n_abnormal for patient in chosen),
        "data_config": study.config.to_dict(),
        "data_config_hash": study.config.hash(),
    }


def format_table(summary: dict[str, Any]) -> str:
    """A fixed-width table of `study_summary` with a totals line."""
    lines = [f"{'record':>6} {'windows':>8} {'normal':>8} {'abnormal':>8} {'abn %':>7}  selected"]
    for row in summary["records"]:
        lines.append(
            f"{row['record']:>6} {row['windows']:>8} {row['normal']:>8} {row['abnormal']:>8} "
            f"{100 * row['abnormal_share']:>7.2f}  {'yes' if row['selected'] else 'no'}"
        )
    total = summary["total_windows"]
    share = summary["total_abnormal"] / total if total else 0.0
    lines.append(
        f"{'total':>6} {total:>8} {summary['total_normal']:>8} {summary['total_abnormal']:>8} "
        f"{100 * share:>7.2f}  {len(summary['selected'])} of {len(summary['records'])} selected"
    )
    return "\n".join(lines)
