"""Write the preprocessed windows of chosen patients to one `.npz` for use in other tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecg_platform.data.cache import save_npz
from ecg_platform.data.dataset import SPLITS, StudyData


def export_windows(study: StudyData, records: Sequence[str], out: Path) -> int:
    """Save `x` (n, L) float32, `y` uint8, `record` and `split` (str per window) and the data
    config to `out`; returns n."""
    patients = [study.patients[record] for record in records]
    save_npz(
        out,
        {
            "x": np.concatenate([patient.x for patient in patients]),
            "y": np.concatenate([patient.y for patient in patients]),
            "record": np.concatenate([np.full(p.n_windows, p.record) for p in patients]),
            "split": np.asarray(SPLITS)[np.concatenate([patient.split for patient in patients])],
            "data_config": np.array(json.dumps(study.config.to_dict(), sort_keys=True)),
        },
    )
    return sum(patient.n_windows for patient in patients)
