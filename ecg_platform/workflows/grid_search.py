"""Grid search per patient: one nested run per setting, the winner chosen on validation only
(`grid_setting`). Every patient's settings are queued at once, so no worker idles at the end of
a patient while another patient's settings wait. The winner is recorded as tags on the
patient's grid-search run, where `individual` and `finetune` find it
(`hyperparams.find_grid_winner`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.registry import pretrained_source
from ecg_platform.tracking.run_group import child_runs
from ecg_platform.tracking.run_search import FINISHED, find_finished_run, find_runs
from ecg_platform.tracking.runs import TrackedRun, stage_run
from ecg_platform.tracking.schema import (
    PATIENT_TAG,
    TRACKING,
    PatientMode,
)
from ecg_platform.workflows.executor import Executor, Job, make_executor
from ecg_platform.workflows.executor_spec import Workers, as_spec
from ecg_platform.workflows.grid_setting import (
    GRID_FIELDS,
    STAGE,
    GridPlan,
    SettingJob,
    SettingResult,
    pick_winner,
    run_setting,
    setting_label,
)
from ecg_platform.workflows.hyperparams import GridWinner
from ecg_platform.workflows.request import StageRequest
from ecg_platform.workflows.reuse import Batch, run_or_reuse
from ecg_platform.workflows.settings import GridSpec, PatientHyperparams
from ecg_platform.workflows.tracked_run import (
    config_params,
    load_request_study,
)


@dataclass(frozen=True)
class PatientGrid:
    """One patient's grid search: every setting's result and the winner."""

    patient: str
    run_id: str
    results: list[SettingResult]
    winner: SettingResult

    def summary(self) -> str:
        """One line for the terminal."""
        counts = {
            "finished": sum(r.status == FINISHED and not r.reused for r in self.results),
            "reused": sum(r.reused for r in self.results),
            "failed": sum(r.status != FINISHED for r in self.results),
        }
        winner = self.winner
        return (
            f"{self.patient}: winner {setting_label(winner.setting)} (validation balanced "
            f"accuracy {winner.val_balanced_accuracy:.4f}, loss {winner.val_loss:.4f}); "
            + ", ".join(f"{count} {name}" for name, count in counts.items())
            + f"; run {self.run_id}"
        )


@dataclass(frozen=True)
class PatientSearch:
    """One patient's settings, whose runs nest under the patient's grid-search run `run_id`."""

    plan: GridPlan
    patient: str
    run_id: str
    settings: dict[str, PatientHyperparams]  # by label

    @classmethod
    def of(cls, plan: GridPlan, grid: GridSpec, patient: str, run_id: str) -> PatientSearch:
        """Every setting of `grid` for `patient`."""
        return cls(plan, patient, run_id, {setting_label(s): s for s in grid.settings()})

    def job_name(self, label: str) -> str:
        """A job's name, unique across patients, e.g. `233 b4-lr0.01-weighted`."""
        return f"{self.patient} {label}"

    def jobs(self) -> list[Job[SettingResult]]:
        """One job per setting."""
        return [
            Job(
                self.job_name(label),
                run_setting,
                SettingJob(self.plan, self.patient, setting, self.run_id),
                self.run_id,
            )
            for label, setting in self.settings.items()
        ]

    def finished_lookup(self) -> Callable[[Job[SettingResult]], SettingResult | None]:
        """`reuse(job)`: what a finished run of the job's setting logged, else None (one store
        search for all of this patient's settings)."""
        tags = self.plan.tags("setting") | {PATIENT_TAG: self.patient}
        previous = find_runs(tags)

        def reuse(job: Job[SettingResult]) -> SettingResult | None:
            setting = job.argument.setting
            match = find_finished_run(tags, self.plan.params(setting), previous)
            return SettingResult.of_run(setting, match) if match else None

        return reuse

    def record(self, run: TrackedRun, batch: Batch[SettingResult]) -> PatientGrid:
        """The settings' results and the winner, logged on the patient's `run`. Raises when no
        setting finished."""
        done, failed = batch.outcomes(), batch.failed()
        results = [
            done.get(self.job_name(label))
            or SettingResult(setting, None, "FAILED", error=failed[self.job_name(label)])
            for label, setting in self.settings.items()
        ]
        run.log_dict({"settings": [result.as_dict() for result in results]}, "grid_results.json")
        run.log_metrics(
            {
                "settings_finished": sum(result.status == FINISHED for result in results),
                "settings_reused": sum(result.reused for result in results),
                "settings_failed": sum(result.status != FINISHED for result in results),
            }
        )
        winner = pick_winner(results)
        if winner is None or winner.run_id is None:
            raise EcgPlatformError(
                f"no setting of the grid finished for patient {self.patient}; the failed runs' "
                "failure_reason tags say why"
            )
        record_winner(run, self.plan, self.patient, winner)
        return PatientGrid(self.patient, run.run_id, results, winner)


def run_settings(
    searches: Sequence[PatientSearch], executor: Executor, label: str
) -> Batch[SettingResult]:
    """Every setting of every patient queued at once (no worker idles at a patient's end);
    settings that already finished are reused."""
    lookups = {search.patient: search.finished_lookup() for search in searches}
    jobs = [job for search in searches for job in search.jobs()]
    return run_or_reuse(
        executor, jobs, lambda job: lookups[job.argument.patient](job), label, "settings"
    )


def record_winner(run: TrackedRun, plan: GridPlan, patient: str, winner: SettingResult) -> None:
    """Tags (where the stages look it up), metrics and `grid_winner.json` on the patient's run."""
    run.set_tags(GridWinner(winner.setting, run.run_id, str(winner.run_id)).tags())
    run.log_metrics(
        {
            "winner_val_balanced_accuracy": winner.val_balanced_accuracy,
            "winner_val_loss": winner.val_loss,
        }
    )
    run.log_dict(
        {"patient": patient, "mode": plan.mode, **plan.tags("patient"), **winner.as_dict()},
        "grid_winner.json",
    )


def grid_params(plan: GridPlan, grid: GridSpec, workers: Workers) -> dict[str, Any]:
    """The grid and the settings every setting shares, as parameters of the grid's top run."""
    request, spec = plan.request, as_spec(workers)
    shared = config_params(request.data, request.model, request.train)
    shared = {key: value for key, value in shared.items() if key not in GRID_FIELDS}
    spec_params = {f"grid.{name}": ",".join(map(str, v)) for name, v in asdict(grid).items()}
    executor = {"grid.workers": spec.workers or "auto", "grid.executor": spec.describe()}
    return shared | spec_params | {"grid.mode": plan.mode} | executor


def run_grid_search(
    request: StageRequest,
    grid: GridSpec,
    mode: PatientMode,
    workers: Workers,
    pretrained_uri: str = TRACKING.default_pretrained_uri,
    force: bool = False,
) -> list[PatientGrid]:
    """Every setting of `grid` for each requested patient, `workers` settings at a time (a
    count: local processes; or an `ExecutorSpec`, e.g. Ray), all patients' settings queued at
    once.

    One patient: its grid-search run is the top run. Several: a top run with one nested run per
    patient, each with one nested run per setting. `finetune` mode starts every setting from
    `pretrained_uri` (default: the champion), resolved once to an exact version.
    """
    several = request.several_patients
    role = "patients" if several else "patient"
    pretrained = None
    if mode == "finetune":  # resolved before any run opens: a missing model leaves none
        pretrained = pretrained_source(pretrained_uri, request.data, force)
    plan = GridPlan(request, mode, pretrained)
    with stage_run(
        STAGE,
        request.patients.label,
        plan.tags(role),
        run_name=f"{STAGE}-{request.patients.label}",
        parent_run_id=request.parent_run_id,
    ) as outer:
        outer.log_params(grid_params(plan, grid, workers))
        records = load_request_study(request).records
        with make_executor(workers) as executor:
            if not several:
                search = PatientSearch.of(plan, grid, records[0], outer.run_id)
                batch = run_settings([search], executor, f"{STAGE} {records[0]}")
                return [search.record(outer, batch)]
            return _search_patients(outer, plan, grid, records, executor)


def _search_patients(
    outer: TrackedRun, plan: GridPlan, grid: GridSpec, records: list[str], executor: Executor
) -> list[PatientGrid]:
    """One nested grid-search run per patient; a patient without a winner fails at the end."""
    searched: list[PatientGrid] = []
    failed: list[str] = []
    if executor.in_process:  # one job at a time anyway: each patient's run active in turn
        for record in records:
            name = f"{STAGE}-{record}"
            try:
                with stage_run(STAGE, record, plan.tags("patient"), name, nested=True) as run:
                    search = PatientSearch.of(plan, grid, record, run.run_id)
                    batch = run_settings([search], executor, f"{STAGE} {record}")
                    searched.append(search.record(run, batch))
            except EcgPlatformError as exc:
                failed.append(f"{record}: {exc}")
    else:
        _search_all_at_once(outer, plan, grid, records, executor, searched, failed)
    outer.log_dict(
        {found.patient: found.winner.as_dict() for found in searched}, "grid_winners.json"
    )
    if failed:
        raise EcgPlatformError("grid search found no winner for " + "; ".join(failed))
    return searched


def _search_all_at_once(
    outer: TrackedRun,
    plan: GridPlan,
    grid: GridSpec,
    records: list[str],
    executor: Executor,
    searched: list[PatientGrid],
    failed: list[str],
) -> None:
    """Every patient's run open together while all their settings run in one queue; appends to
    `searched` and `failed`."""
    children = {record: (plan.tags("patient"), f"{STAGE}-{record}") for record in records}
    with child_runs(outer, STAGE, children) as group:
        searches = [PatientSearch.of(plan, grid, r, group.runs[r].run_id) for r in records]
        batch = run_settings(searches, executor, STAGE)
        for search in searches:
            try:
                searched.append(search.record(group.runs[search.patient], batch))
            except EcgPlatformError as exc:
                group.end(search.patient, f"EcgPlatformError: {exc}")
                failed.append(f"{search.patient}: {exc}")
