"""Sibling runs open at once under one parent run.

MLflow's fluent API keeps one active run per thread, so `stage_run` opens runs one inside the
other. A grid search over several patients queues every patient's settings at once, so every
patient's run must be open (RUNNING, the parent of its settings' runs) while the others' are:
these runs are made with the client, and end like `stage_run`'s: FINISHED, FAILED with a
`failure_reason`, or KILLED on Ctrl-C; never left RUNNING.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ecg_platform.tracking.runs import TrackedRun, standard_tags
from ecg_platform.tracking.schema import FAILURE_TAG, Stage


@dataclass
class RunGroup:
    """The open runs by key; `end` closes one early (the rest end when the group does)."""

    runs: dict[str, TrackedRun]
    ended: set[str] = field(default_factory=set)

    def end(self, key: str, error: str | None = None) -> None:
        """End the run of `key`: FINISHED, or FAILED with `error` as its `failure_reason`."""
        _terminate(self.runs[key], RunStatus.FAILED if error else RunStatus.FINISHED, error)
        self.ended.add(key)

    def end_open(self, status: int, reason: str | None) -> None:
        """End every run not ended yet with `status`."""
        for key in [key for key in self.runs if key not in self.ended]:
            _terminate(self.runs[key], status, reason)
            self.ended.add(key)


@contextlib.contextmanager
def child_runs(
    parent: TrackedRun, stage: Stage, children: Mapping[str, tuple[Mapping[str, str], str]]
) -> Iterator[RunGroup]:
    """One run of `stage` per key of `children` (the key is its patient; the value its tags and
    run name), nested under `parent` and RUNNING together. Runs the block has not ended end
    FINISHED, or, when it raises, KILLED (Ctrl-C) or FAILED with the exception as reason."""
    client = MlflowClient()
    runs = {}
    for patient, (tags, name) in children.items():
        all_tags = (
            standard_tags(stage, patient) | dict(tags) | {MLFLOW_PARENT_RUN_ID: parent.run_id}
        )
        created = client.create_run(parent.experiment_id, tags=all_tags, run_name=name)
        runs[patient] = TrackedRun(created.info.run_id, parent.experiment_id)
    group = RunGroup(runs)
    try:
        yield group
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        group.end_open(RunStatus.KILLED if interrupted else RunStatus.FAILED, reason)
        raise
    group.end_open(RunStatus.FINISHED, None)


def _terminate(run: TrackedRun, status: int, reason: str | None) -> None:
    client = MlflowClient()
    if reason:
        client.set_tag(run.run_id, FAILURE_TAG, reason[:5000])
    client.set_terminated(run.run_id, RunStatus.to_string(status))
