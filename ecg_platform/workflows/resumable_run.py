"""A training run that outlives its process: every epoch is checkpointed to a local file named
by the run's settings, and the same command run again after a crash, kill -9, Ctrl-C or a lost
tracking server re-opens the interrupted run (same stage, patient and params, ended FAILED or
KILLED) and continues from that checkpoint into the same run id. The engine resumes bit for bit,
so the result is the uninterrupted run's. The checkpoint is deleted once the run finished. While
a run trains, its checkpoint is locked: the same command started meanwhile stops in one line
instead of resuming a checkpoint that is still being written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.run_search import find_runs
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import CHECKPOINT_KEY_TAG, STAGE_TAG, Stage
from ecg_platform.workflows.progress import announce

CHECKPOINT_FOLDER = "checkpoints"  # under the cache directory
INTERRUPTED = ("FAILED", "KILLED")


@dataclass(frozen=True)
class ResumableRun:
    """The open run, the checkpoint its training writes every epoch, and whether it resumes."""

    run: TrackedRun
    checkpoint: Path
    resume: bool


def settings_key(stage: Stage, patient: str, params: Mapping[str, Any]) -> str:
    """A short hash of everything the run logs as its settings: equal keys, equal training."""
    text = json.dumps(
        {"stage": stage, "patient": patient, "params": {k: str(v) for k, v in params.items()}},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def resumable_run(
    stage: Stage,
    patient: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    cache_dir: Path,
    run_name: str,
    parent_run_id: str | None = None,
    system_metrics: bool = False,
) -> Iterator[ResumableRun]:
    """`stage_run` with `params` logged, re-opening the interrupted run of the same settings
    when its checkpoint is still here (a new run otherwise, e.g. under `mlflow run`, which
    makes every command's run; the training resumes all the same)."""
    key = settings_key(stage, patient, params)
    checkpoint = cache_dir / CHECKPOINT_FOLDER / f"{key}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with _training_alone(checkpoint, stage, patient):
        resume = checkpoint.is_file()
        interrupted = _interrupted_run(stage, key) if resume else None
        if resume:
            where = f"run {interrupted}" if interrupted else "a new run"
            announce(f"{stage} {patient}: resuming from checkpoint {checkpoint} into {where}")
        with stage_run(
            stage,
            patient,
            dict(tags) | {CHECKPOINT_KEY_TAG: key},
            run_name,
            parent_run_id=parent_run_id,
            system_metrics=system_metrics,
            reopen_run_id=interrupted,
        ) as run:
            run.log_params(params)
            yield ResumableRun(run, checkpoint, resume)
        checkpoint.unlink(missing_ok=True)


@contextmanager
def _training_alone(checkpoint: Path, stage: Stage, patient: str) -> Iterator[None]:
    """Hold the checkpoint's lock (the kernel drops it when the process dies), or stop in one
    line when another process holds it."""
    lock = FileLock(checkpoint.with_suffix(".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise EcgPlatformError(
            f"{stage} {patient} with these settings is training in another process (its "
            f"checkpoint {checkpoint} is locked); wait for it, or change a setting"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _interrupted_run(stage: Stage, key: str) -> str | None:
    """The newest run of these settings that ended FAILED or KILLED, or None."""
    runs = find_runs({STAGE_TAG: stage, CHECKPOINT_KEY_TAG: key}, status=None)
    return next((run.run_id for run in runs if run.status in INTERRUPTED), None)
