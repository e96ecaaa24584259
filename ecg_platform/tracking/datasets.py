"""The data a run trained, validated and tested on, recorded the MLflow way (`log_inputs`), so
the UI's Datasets column shows each split with its data config and source."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from ecg_platform.data.loaders import TensorSplit
from ecg_platform.tracking.collisions import MAX_COLLISIONS, is_collision

CONTEXTS = {"train": "training", "val": "validation", "test": "test"}


def log_datasets(
    run_id: str, splits: Mapping[str, TensorSplit], preset: str, digest: str, source: Path
) -> None:
    """One dataset per split, named `<preset>-<split>` (MLflow keeps one context per name and
    digest), its digest the data config's hash and its source the data directory."""
    active = mlflow.active_run()
    if active is None or active.info.run_id != run_id:
        raise RuntimeError(f"datasets go to the active run, and {run_id} is not it")
    datasets = []
    for split in CONTEXTS:
        data = splits[split]
        with warnings.catch_warnings():  # MLflow registers its local source class twice
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(
                data.x.cpu().numpy(),
                targets=data.y.cpu().numpy(),
                source=str(source.resolve()),
                name=f"{preset}-{split}",
                digest=digest,
            )
        datasets.append(dataset)
    contexts = list(CONTEXTS.values())
    for attempt in range(MAX_COLLISIONS + 1):
        try:
            mlflow.log_inputs(datasets, contexts=contexts, tags_list=[{} for _ in contexts])
            return
        except MlflowException as error:  # a sibling run inserted the same dataset first
            if attempt == MAX_COLLISIONS or not is_collision(error):
                raise
