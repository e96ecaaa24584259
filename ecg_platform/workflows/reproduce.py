"""The whole study in one command: pretrain -> individual for all -> finetune for all -> report.

Everything nests under one `reproduce` run. Interrupted, it resumes: a run that already FINISHED
with the same data config and settings (for finetune, also the same pretrained version) is
reused, not repeated. Per-patient runs go to worker processes; at the end it prints where the
time went.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ecg_platform.data.config import DataConfig, resolve_cache_dir
from ecg_platform.data.dataset import load_study
from ecg_platform.data.mitdb import resolve_data_dir
from ecg_platform.engine.config import TrainConfig
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.tracking.run_search import RunRecord, find_runs, has_params
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import (
    DATA_HASH_TAG,
    PATIENT_TAG,
    PRETRAINED_URI_TAG,
    PRETRAINED_VERSION_TAG,
    REGISTERED_MODEL_TAG,
    REGISTERED_VERSION_TAG,
    STAGE_TAG,
    TRACKING,
    Stage,
)
from ecg_platform.tracking.worker_runs import fail_open_children
from ecg_platform.workflows.executor import Workers, announce, cpu_cores, threads_per_worker
from ecg_platform.workflows.finetune import run_finetune
from ecg_platform.workflows.hyperparams import patient_settings
from ecg_platform.workflows.individual import run_individual
from ecg_platform.workflows.pretrain import run_pretrain
from ecg_platform.workflows.report import ReportOutcome, ReportRequest, report, runs_by_id
from ecg_platform.workflows.request import RunOutcome, StageRequest
from ecg_platform.workflows.settings import (
    FINETUNE_DEFAULTS,
    PATIENT_DEFAULTS,
    PRETRAIN_DEFAULTS,
    REPORT_DIR,
)
from ecg_platform.workflows.tracked_run import config_params, log_patients_summary, stage_tags

PATIENT_STAGES: tuple[Stage, ...] = ("individual", "finetune")


@dataclass(frozen=True)
class ReproduceRequest:
    """The study's settings: data, architecture, pretraining and per-patient training."""

    data_dir: str | None
    data: DataConfig
    patients: str = "all"
    cache_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: TrainConfig = PRETRAIN_DEFAULTS
    patient: TrainConfig = PATIENT_DEFAULTS  # individual
    finetune: TrainConfig = FINETUNE_DEFAULTS
    workers: int = field(default_factory=cpu_cores)
    grid_winners: bool = False  # True: a patient's grid-search winner before the study's table
    out_dir: Path = REPORT_DIR

    def stage_request(self, stage: Stage, parent_run_id: str | None = None) -> StageRequest:
        """The request of one stage for the study's patients (nested under `parent_run_id`)."""
        return StageRequest(
            stage,
            self.data_dir,
            self.data,
            self.patients,
            cache_dir=self.cache_dir,
            model=self.model,
            train={"pretrain": self.pretrain, "finetune": self.finetune}.get(stage, self.patient),
            grid_winners=self.grid_winners,
            parent_run_id=parent_run_id,
        )


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


def timing_table(times: list[StageTime], workers: int, total: float) -> str:
    """The time table printed at the end (seconds); `total` also counts opening the runs."""
    threads = threads_per_worker(workers)
    lines = [
        f"where the time went (s; training and mlflow+other are sums over runs, "
        f"{workers} worker(s) x {threads} thread(s)):",
        f"{'step':<11}{'wall':>8}{'runs':>6}{'reused':>8}{'failed':>8}{'training':>10}"
        f"{'mlflow+other':>14}",
    ]
    for t in times:
        lines.append(
            f"{t.stage:<11}{t.wall:>8.1f}{t.runs:>6}{t.reused:>8}{t.failed:>8}"
            f"{t.training:>10.1f}{t.other:>14.1f}"
        )
    lines.append(f"{'total':<11}{total:>8.1f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class PatientJob:
    """One patient's run of a stage, for a worker."""

    request: StageRequest
    pretrained_uri: str | None


def run_patient(job: PatientJob) -> RunOutcome:
    """The patient's individual or finetune run, nested under the stage's parent run."""
    if job.pretrained_uri is not None:
        (outcome,) = run_finetune(job.request, job.pretrained_uri, force=False)
    else:
        (outcome,) = run_individual(job.request)
    return outcome


def outcome_of_run(run: RunRecord) -> RunOutcome:
    """A finished run, reused, as the outcome it had."""
    metrics = run.metrics
    return RunOutcome(
        patient=run.tags[PATIENT_TAG],
        run_id=run.run_id,
        test_metrics={
            key.removeprefix("test_"): value
            for key, value in metrics.items()
            if key.startswith("test_")
        },
        best_epoch=int(metrics.get("best_epoch", 0)),
        model_name=run.tags.get(REGISTERED_MODEL_TAG, ""),
        model_version=run.tags.get(REGISTERED_VERSION_TAG, ""),
        champion=False,
    )


@dataclass(frozen=True)
class PretrainedModel:
    """The pretrained model the finetune stage starts from."""

    run_id: str
    version: str

    @property
    def uri(self) -> str:
        """Its exact registry URI."""
        return f"models:/{TRACKING.pretrained_model}/{self.version}"

    def tags(self) -> dict[str, str]:
        """The tags finetune runs carry for it."""
        return {PRETRAINED_URI_TAG: self.uri, PRETRAINED_VERSION_TAG: self.version}


def pretrain_step(
    request: ReproduceRequest, records: list[str], top: TrackedRun
) -> tuple[PretrainedModel, StageTime]:
    """Reuse a finished pretraining run of the same settings, else pretrain."""
    started = time.perf_counter()
    stage_request = request.stage_request("pretrain", top.run_id)
    expected = config_params(request.data, request.model, request.pretrain)
    expected["data.patients"] = ",".join(records)
    for run in find_runs({STAGE_TAG: "pretrain", **stage_tags(stage_request)}):
        if has_params(run, expected) and run.tags.get(REGISTERED_VERSION_TAG):
            announce(f"pretrain: reusing finished run {run.run_id}")
            model = PretrainedModel(run.run_id, run.tags[REGISTERED_VERSION_TAG])
            return model, StageTime("pretrain", time.perf_counter() - started, reused=1)
    announce(f"pretrain: {len(records)} patients pooled, {request.pretrain.epochs} epochs")
    (outcome,) = run_pretrain(stage_request)
    wall = time.perf_counter() - started
    training = outcome.train_seconds
    timing = StageTime("pretrain", wall, runs=1, training=training, other=wall - training)
    return PretrainedModel(outcome.run_id, outcome.model_version), timing


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
    pool: Workers,
    pretrained: PretrainedModel | None,
) -> StageResult:
    """One run per patient under a stage parent run: finished ones reused, the rest in the
    workers."""
    started = time.perf_counter()
    parent_request = request.stage_request(stage)
    extra_tags = pretrained.tags() if pretrained else {}
    tags = stage_tags(parent_request) | extra_tags
    previous = find_runs({STAGE_TAG: stage, **tags})
    with stage_run(
        stage, request.patients, tags, f"{stage}-{request.patients}", nested=True
    ) as run:
        reused, jobs = {}, {}
        for patient in records:
            patient_request = replace(parent_request, patients=patient, parent_run_id=run.run_id)
            train, _ = patient_settings(patient, patient_request)
            expected = config_params(request.data, request.model, train)
            match = next(
                (r for r in previous if r.tags[PATIENT_TAG] == patient and has_params(r, expected)),
                None,
            )
            if match is not None:
                reused[patient] = outcome_of_run(match)
            else:
                jobs[patient] = PatientJob(patient_request, pretrained and pretrained.uri)
        announce(
            f"{stage}: {len(records)} patients, {len(reused)} reused (already finished), "
            f"{len(jobs)} to run on {pool.count} worker(s) x "
            f"{threads_per_worker(pool.count)} thread(s)"
        )
        done = pool.run(run_patient, jobs, label=stage)
        made = {patient: result.value for patient, result in done.items() if result.value}
        failed = {patient: result.error or "" for patient, result in done.items() if result.error}
        if failed:
            fail_open_children(run.run_id, "its worker process died")
        outcomes = {
            patient: (reused | made)[patient] for patient in records if patient not in failed
        }
        if outcomes:
            log_patients_summary(run, list(outcomes.values()))
        run.log_dict(
            {
                "runs": {patient: outcome.run_id for patient, outcome in outcomes.items()},
                "reused": sorted(reused),
                "failed": failed,
            },
            "patient_runs.json",
        )
    training = sum(outcome.train_seconds for outcome in made.values())
    timing = StageTime(
        stage,
        time.perf_counter() - started,
        runs=len(jobs),
        reused=len(reused),
        failed=len(failed),
        training=training,
        other=sum(result.seconds for result in done.values() if result.value) - training,
    )
    return StageResult(outcomes, failed, timing)


def report_step(
    request: ReproduceRequest, results: Mapping[str, StageResult], top: TrackedRun
) -> tuple[ReportOutcome, StageTime]:
    """The report of exactly the runs the patient stages made or reused."""
    started = time.perf_counter()
    run_ids = {
        stage: {patient: outcome.run_id for patient, outcome in result.outcomes.items()}
        for stage, result in results.items()
    }
    report_request = ReportRequest(
        request.data_dir,
        request.data,
        request.patients,
        out_dir=request.out_dir,
        cache_dir=request.cache_dir,
        parent_run_id=top.run_id,
    )
    outcome = report(report_request, runs_by_id(run_ids, request.data))
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
    with stage_run("reproduce", request.patients, tags, run_name="reproduce") as top:
        top.log_params(
            config_params(request.data, request.model, request.patient)
            | {f"pretrain.{key}": value for key, value in asdict(request.pretrain).items()}
            | {"finetune.encoder_lr_scale": request.finetune.encoder_lr_scale}
            | {"reproduce.workers": request.workers, "reproduce.grid_winners": request.grid_winners}
        )
        started = time.perf_counter()
        data_dir = resolve_data_dir(request.data_dir)
        study = load_study(data_dir, request.data, cache_dir=resolve_cache_dir(request.cache_dir))
        records = study.select(request.patients)
        times.append(StageTime("data", time.perf_counter() - started))
        pretrained, timing = pretrain_step(request, records, top)
        times.append(timing)
        results: dict[str, StageResult] = {}
        with Workers(request.workers) as pool:
            for stage in PATIENT_STAGES:
                results[stage] = patient_step(
                    stage, request, records, pool, pretrained if stage == "finetune" else None
                )
                times.append(results[stage].timing)
        outcome, timing = report_step(request, results, top)
        times.append(timing)
        total = time.perf_counter() - begun
        table = timing_table(times, request.workers, total)
        announce(table)
        top.log_metrics(_timing_metrics(times) | {"time_total_s": total})
        _raise_if_failed({stage: result.failed for stage, result in results.items()})
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
