"""Which runs a report compares: each patient's latest, or those nested under given parent runs
(one set per training seed), or those named by id; and the pretraining run behind them."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecg_platform.data.config import ProtocolConfig
from ecg_platform.errors import EcgPlatformError
from ecg_platform.evaluation.comparison import MODES
from ecg_platform.tracking.run_search import (
    FINISHED,
    RunRecord,
    child_runs,
    find_runs,
    get_run,
    latest_run,
)
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    PATIENT_TAG,
    PRETRAINED_RUN_TAG,
    STAGE_TAG,
)
from ecg_platform.workflows.tracked_run import train_param

TRAIN_SEED_PARAM = train_param("seed")  # one repeat per value


@dataclass(frozen=True)
class RunSet:
    """The runs a report compares, by mode and patient, and the pretraining run behind them."""

    runs: dict[str, dict[str, RunRecord]] = field(default_factory=dict)
    pretrain: RunRecord | None = None


def _by_patient(runs: Iterable[RunRecord], patients: list[str]) -> dict[str, RunRecord]:
    """The newest run of each patient among `runs` (newest first)."""
    chosen: dict[str, RunRecord] = {}
    for run in runs:
        patient = run.tags.get(PATIENT_TAG, "")
        if patient in patients and patient not in chosen:
            chosen[patient] = run
    return chosen


def latest_runs(data: ProtocolConfig, patients: list[str]) -> RunSet:
    """Each patient's latest finished run of each mode under `data`."""
    runs = {
        mode: _by_patient(find_runs({STAGE_TAG: mode, DATA_HASH_TAG: data.hash()}), patients)
        for mode in MODES
    }
    return RunSet(runs, pretrain_run(runs.get("finetune", {}).values(), data))


def _with_descendants(run_ids: Iterable[str]) -> list[RunRecord]:
    """The runs and every finished run nested under them, at any depth."""
    found, pending = [], [get_run(run_id) for run_id in run_ids]
    while pending:
        run = pending.pop()
        found.append(run)
        pending += child_runs(run.run_id, FINISHED)
    return found


def runs_of_parents(
    parents: Iterable[str], data: ProtocolConfig, patients: list[str]
) -> list[RunSet]:
    """The finished patient runs among `parents` and the runs nested under them (e.g. a
    stage's parent run, or a `reproduce` run), checked to be of data config `data`: one run
    set per training seed found (a `reproduce --repeats N` run gives its N repeats back)."""
    found = sorted(_with_descendants(parents), key=lambda run: run.start_time, reverse=True)
    patient_runs = [
        run
        for run in found
        if run.status == FINISHED
        and run.tags.get(STAGE_TAG) in MODES
        and run.tags.get(PATIENT_TAG) in patients
    ]
    foreign = {run.tags.get(DATA_HASH_TAG, "(none)") for run in patient_runs} - {data.hash()}
    if foreign:
        raise EcgPlatformError(
            f"the given runs are of data config(s) {', '.join(sorted(foreign))}, not "
            f"{data.hash()}: give the --preset and --seed they were trained with"
        )
    seeds = sorted({run.params.get(TRAIN_SEED_PARAM, "") for run in patient_runs}, key=_seed_order)
    run_sets = []
    for seed in seeds or [""]:
        of_seed = [run for run in patient_runs if run.params.get(TRAIN_SEED_PARAM, "") == seed]
        runs = {
            mode: _by_patient((run for run in of_seed if run.tags[STAGE_TAG] == mode), patients)
            for mode in MODES
        }
        run_sets.append(RunSet(runs, pretrain_run(runs["finetune"].values(), data)))
    return run_sets


def _seed_order(seed: str) -> tuple[int, str]:
    return (int(seed), "") if seed.isdigit() else (-1, seed)


def runs_by_id(run_ids: Mapping[str, Mapping[str, str]], data: ProtocolConfig) -> RunSet:
    """The runs named by mode and patient (e.g. those `reproduce` just ran or reused)."""
    runs = {
        mode: {patient: get_run(run_id) for patient, run_id in by_patient.items()}
        for mode, by_patient in run_ids.items()
    }
    return RunSet(runs, pretrain_run(runs.get("finetune", {}).values(), data))


def pretrain_run(finetuned: Iterable[RunRecord], data: ProtocolConfig) -> RunRecord | None:
    """The pretraining run most fine-tuned runs started from; else the latest for `data`."""
    used = collections.Counter(run.tags.get(PRETRAINED_RUN_TAG) for run in finetuned)
    used.pop(None, None)
    used.pop("", None)
    if used:
        return get_run(used.most_common(1)[0][0])
    return latest_run({STAGE_TAG: "pretrain", DATA_HASH_TAG: data.hash()})
