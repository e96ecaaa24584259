"""The whole study in one command: pretrain -> individual for all -> finetune for all -> report.

Everything nests under one `reproduce` run. Interrupted, it resumes: a run that already FINISHED
with the same data config and settings (for finetune, also the same pretrained version) is
reused, not repeated. Per-patient runs go to worker processes; at the end it prints where the
time went.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.run_search import find_finished_run, find_runs
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    PATIENT_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
    REGISTERED_VERSION_TAG,
    STAGE_TAG,
    Stage,
)
from ecg_platform.workflows.executor import Executor, Job, make_executor
from ecg_platform.workflows.executor_spec import as_spec
from ecg_platform.workflows.finetune import train_finetuned
from ecg_platform.workflows.hyperparams import patient_settings
from ecg_platform.workflows.individual import train_individual
from ecg_platform.workflows.patient_runs import TrainOne, log_patients_summary, patient_jobs
from ecg_platform.workflows.pretrain import run_pretrain
from ecg_platform.workflows.progress import announce
from ecg_platform.workflows.report import ReportOutcome, report
from ecg_platform.workflows.report_runs import runs_by_id
from ecg_platform.workflows.request import (
    ReportRequest,
    ReproduceRequest,
    RunOutcome,
)
from ecg_platform.workflows.reuse import run_or_reuse
from ecg_platform.workflows.tracked_run import config_params, outcome_of_run, stage_tags

PATIENT_STAGES: tuple[Stage, ...] = ("individual", "finetune")


@dataclass
class StageTime:
    """Where one step's time went: its wall time, and per-run sums over the runs it made."""

    stage: str
    wall: float
    runs: int = 0
    reused: int = 0
    failed: int = 0
    training: float = 0.0  # the epochs of the runs made
    other: float = 0.0  # the rest of those runs: loading, testing, figures, logging to MLflow


def timing_table(times: list[StageTime], where: str, total: float) -> str:
    """The time table printed at the end (seconds); `where` the executor's description;
    `total` also counts opening the runs."""
    lines = [
        f"where the time went (s; training and mlflow+other are sums over runs, {where}):",
        f"{'step':<18}{'wall':>8}{'runs':>6}{'reused':>8}{'failed':>8}{'training':>10}"
        f"{'mlflow+other':>14}",
    ]
    for t in times:
        lines.append(
            f"{t.stage:<18}{t.wall:>8.1f}{t.runs:>6}{t.reused:>8}{t.failed:>8}"
            f"{t.training:>10.1f}{t.other:>14.1f}"
        )
    lines.append(f"{'total':<18}{total:>8.1f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class PretrainedModel:
    """The pretrained model the finetune stage starts from."""

    run_id: str
    name: str
    version: str

    @property
    def uri(self) -> str:
        """Its exact registry URI."""
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def of(cls, outcome: RunOutcome) -> PretrainedModel:
        """The model a pretraining run registered."""
        return cls(outcome.run_id, outcome.model_name, outcome.model_version)

    def tags(self) -> dict[str, str]:
        """The tags finetune runs carry for it."""
        return {PRETRAINED_URI_TAG: self.uri, PRETRAINED_VERSION_TAG: self.version}


def pretrain_step(
    request: ReproduceRequest, records: list[str], top: TrackedRun, suffix: str = ""
) -> tuple[PretrainedModel, StageTime]:
    """Reuse a finished pretraining run of the same settings, else pretrain."""
    started = time.perf_counter()
    stage_request = request.stage_request("pretrain", top.run_id)
    expected = config_params(request.data, request.model, request.pretrain)
    expected["data.patients"] = ",".join(records)
    found = find_finished_run({STAGE_TAG: "pretrain", **stage_tags(stage_request)}, expected)
    if found is not None and found.tags.get(REGISTERED_VERSION_TAG):
        announce(f"pretrain: reusing finished run {found.run_id}")
        model = PretrainedModel.of(outcome_of_run(found))
        return model, StageTime(f"pretrain{suffix}", time.perf_counter() - started, reused=1)
    announce(f"pretrain: {len(records)} patients pooled, {request.pretrain.epochs} epochs")
    (outcome,) = run_pretrain(stage_request)
    wall = time.perf_counter() - started
    training = outcome.train_seconds
    timing = StageTime(f"pretrain{suffix}", wall, runs=1, training=training, other=wall - training)
    return PretrainedModel.of(outcome), timing


@dataclass
class StageResult:
    """A patient stage's outcomes by patient, its failures, and its time."""

    outcomes: dict[str, RunOutcome]
    failed: dict[str, str]
    timing: StageTime


def patient_step(
    stage: Stage,
    request: ReproduceRequest,
    records: list[str],
    executor: Executor,
    pretrained: PretrainedModel | None,
    suffix: str = "",
) -> StageResult:
    """One run per patient under a stage parent run: finished ones reused, the rest run by the
    executor."""
    started = time.perf_counter()
    parent_request = request.stage_request(stage)
    extra_tags = pretrained.tags() if pretrained else {}
    tags = stage_tags(parent_request) | extra_tags
    previous = find_runs({STAGE_TAG: stage, **tags})
    train_one: TrainOne = train_individual
    if pretrained is not None:
        train_one = functools.partial(train_finetuned, pretrained_uri=pretrained.uri, force=False)

    def reuse(job: Job[RunOutcome]) -> RunOutcome | None:
        train, _ = patient_settings(job.name, job.argument)
        expected = config_params(request.data, request.model, train)
        found = find_finished_run({PATIENT_TAG: job.name}, expected, previous)
        return outcome_of_run(found) if found else None

    label = request.patients.label
    with stage_run(stage, label, tags, f"{stage}-{label}{suffix}", nested=True) as run:
        jobs = patient_jobs(parent_request, records, run.run_id, train_one)
        batch = run_or_reuse(executor, jobs, reuse, stage, "patients")
        outcomes, failed = batch.outcomes(), batch.failed()
        if outcomes:
            log_patients_summary(run, list(outcomes.values()))
        run.log_dict(
            {
                "runs": {patient: outcome.run_id for patient, outcome in outcomes.items()},
                "reused": sorted(batch.reused),
                "failed": failed,
            },
            "patient_runs.json",
        )
    made = {patient: result for patient, result in batch.ran.items() if result.ok}
    training = sum(outcomes[patient].train_seconds for patient in made)
    timing = StageTime(
        f"{stage}{suffix}",
        time.perf_counter() - started,
        runs=len(batch.ran),
        reused=len(batch.reused),
        failed=len(failed),
        training=training,
        other=sum(result.seconds for result in made.values()) - training,
    )
    return StageResult(outcomes, failed, timing)


def report_step(
    request: ReproduceRequest, repeats: Sequence[Mapping[str, StageResult]], top: TrackedRun
) -> tuple[ReportOutcome, StageTime]:
    """The report of exactly the runs the patient stages made or reused, one set per repeat."""
    started = time.perf_counter()
    run_sets = [
        runs_by_id(
            {
                stage: {patient: outcome.run_id for patient, outcome in result.outcomes.items()}
                for stage, result in results.items()
            },
            request.data,
        )
        for results in repeats
    ]
    report_request = ReportRequest(
        request.source, request.patients, out_dir=request.out_dir, parent_run_id=top.run_id
    )
    outcome = report(report_request, run_sets)
    return outcome, StageTime("report", time.perf_counter() - started)


@dataclass(frozen=True)
class ReproduceOutcome:
    """The study's report and the time table."""

    run_id: str
    report: ReportOutcome
    timing: str


def reproduce(request: ReproduceRequest) -> ReproduceOutcome:
    """Pretrain, train every patient from scratch, fine-tune every patient, report."""
    begun = time.perf_counter()
    times: list[StageTime] = []
    tags = {DATA_HASH_TAG: request.data.hash()}
    label = request.patients.label
    with stage_run("reproduce", label, tags, run_name="reproduce", system_metrics=True) as top:
        top.log_params(
            config_params(request.data, request.model, request.patient)
            | {f"pretrain.{key}": value for key, value in asdict(request.pretrain).items()}
            | {"finetune.encoder_lr_scale": request.finetune.encoder_lr_scale}
            | {"reproduce.workers": as_spec(request.workers).workers or "auto"}
            | {"reproduce.executor": as_spec(request.workers).describe()}
            | {"reproduce.grid_winners": request.grid_winners}
            | {"reproduce.repeats": request.repeats}
        )
        started = time.perf_counter()
        records = request.source.load().select(request.patients)
        times.append(StageTime("data", time.perf_counter() - started))
        repeats: list[dict[str, StageResult]] = []
        for seed in request.training_seeds:
            suffix = "" if request.repeats == 1 else f"-seed{seed}"
            one = request.with_training_seed(seed)
            pretrained, timing = pretrain_step(one, records, top, suffix)
            times.append(timing)
            results: dict[str, StageResult] = {}
            with make_executor(request.workers) as executor:
                where = executor.describe()
                for stage in PATIENT_STAGES:
                    start_from = pretrained if stage == "finetune" else None
                    results[stage] = patient_step(stage, one, records, executor, start_from, suffix)
                    times.append(results[stage].timing)
            repeats.append(results)
        outcome, timing = report_step(request, repeats, top)
        times.append(timing)
        total = time.perf_counter() - begun
        table = timing_table(times, where, total)
        announce(table)
        top.log_metrics(_timing_metrics(times) | {"time_total_s": total})
        _raise_if_failed(
            {
                stage if request.repeats == 1 else f"{stage} (seed {seed})": result.failed
                for seed, results in zip(request.training_seeds, repeats, strict=True)
                for stage, result in results.items()
            }
        )
    return ReproduceOutcome(top.run_id, outcome, table)


def _timing_metrics(times: list[StageTime]) -> dict[str, float]:
    metrics = {f"time_{t.stage}_s": t.wall for t in times}
    metrics |= {f"time_{t.stage}_training_s": t.training for t in times if t.runs}
    return metrics | {f"time_{t.stage}_other_s": t.other for t in times if t.runs}


def _raise_if_failed(failed: Mapping[str, Mapping[str, str]]) -> None:
    lines = [
        f"{stage} {patient}: {error}"
        for stage, by in failed.items()
        for patient, error in by.items()
    ]
    if lines:
        raise EcgPlatformError(
            f"{len(lines)} run(s) failed ({'; '.join(lines)}); the report lists them as "
            "missing. Run again to resume: finished runs are reused"
        )
