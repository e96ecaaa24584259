"""Per-record AAMI class counts of a beat protocol's splits, for `data summary --json`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ecg_platform.data.beat_dataset import BeatStudy
from ecg_platform.data.labels import AAMI_CLASSES, class_counts
from ecg_platform.data.protocols import LEAKAGE_FREE, SPLITS, patient_records, pool_records

SEGMENT_NAMES = ("first_minutes", "rest")  # the record's training part and test part


def beat_summary(study: BeatStudy) -> dict[str, Any]:
    """Per record `{"record", "selected", "train", "val", "test", "common", "dropped"}` with
    counts per AAMI class, the common set's counts as `"common"`, and per-split totals over all
    selected records and over records 200-234 (which the common set never touches)."""
    rows = [_record_row(study, record) for record in sorted(study.records)]
    selected = [row for row in rows if row["selected"]]
    pool, patients = pool_records(study.config), patient_records(study.config)
    return {
        "preset": study.config.preset,
        "records": rows,
        "common": _sum(row["common"] for row in rows),
        "totals": {
            "all": _totals(selected),
            "records_200_234": _totals([row for row in selected if row["record"] in LEAKAGE_FREE]),
            "pool": _totals([row for row in selected if row["record"] in pool]),
            "patients": _totals([row for row in selected if row["record"] in patients]),
        },
        "beat_config": study.config.to_dict(),
        "beat_config_hash": study.config.hash(),
    }


def _record_row(study: BeatStudy, record: str) -> dict[str, Any]:
    beats = study.records[record]
    split = study.splits.get(record)
    row: dict[str, Any] = {"record": record, "selected": split is not None}
    for name in SPLITS:
        in_split = np.zeros(beats.n_beats, bool) if split is None else split == SPLITS.index(name)
        row[name] = class_counts(beats.aami[in_split])
    row["dropped"] = {
        segment: dict(zip(AAMI_CLASSES, counts.tolist(), strict=True))
        for segment, counts in zip(SEGMENT_NAMES, beats.dropped, strict=True)
    }
    return row


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"records": len(rows)}
    for name in SPLITS:
        totals[name] = _sum(row[name] for row in rows)
    for segment in SEGMENT_NAMES:
        totals[f"dropped_{segment}"] = _sum(row["dropped"][segment] for row in rows)
    return totals


def _sum(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(AAMI_CLASSES, 0)
    for count in counts:
        for name in AAMI_CLASSES:
            total[name] += count[name]
    return total


def format_beat_table(summary: dict[str, Any]) -> str:
    """The summary as a table: per record its beats per AAMI class in each split."""
    header = ["record", "selected"] + [f"{split} N/S/V/F/Q" for split in SPLITS]
    rows = [header]
    for row in summary["records"]:
        counts = ["/".join(str(row[split][name]) for name in AAMI_CLASSES) for split in SPLITS]
        rows.append([row["record"], "yes" if row["selected"] else "no", *counts])
    totals = summary["totals"]["all"]
    counts = ["/".join(str(totals[split][name]) for name in AAMI_CLASSES) for split in SPLITS]
    rows.append([f"all {totals['records']}", "", *counts])
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
