"""The reuse look-up: a finished run with the same tags and params is found, nothing else is."""

from __future__ import annotations

import pytest

from ecg_platform.tracking.run_search import find_finished_run, find_runs
from ecg_platform.tracking.runs import stage_run

TAGS = {"data_config_hash": "0123456789ab"}
PARAMS = {"train.lr": 0.01, "train.batch_size": 4, "train.weighted_sampling": True}


def _run(params: dict[str, object], tags: dict[str, str] = TAGS, fail: bool = False) -> str:
    """A real run of stage `individual`, patient 119, that logged `params`; its id."""
    try:
        with stage_run("individual", "119", tags) as run:
            run.log_params(params)
            if fail:
                raise RuntimeError("training diverged")
    except RuntimeError:
        pass
    return run.run_id


def test_the_newest_finished_run_with_the_same_params_is_reused(mlflow_store: str) -> None:
    _run(PARAMS)
    newest = _run(PARAMS)
    _run(PARAMS, fail=True)
    found = find_finished_run({"stage": "individual", **TAGS}, PARAMS)
    assert found is not None
    assert found.run_id == newest
    assert found.status == "FINISHED"


@pytest.mark.parametrize(
    ("params", "tags"),
    [
        (PARAMS | {"train.lr": 0.001}, TAGS),  # a changed param
        (PARAMS | {"train.epochs": 30}, TAGS),  # a param the run never logged
        (PARAMS, {"data_config_hash": "ba9876543210"}),  # another data config
    ],
)
def test_a_changed_param_or_tag_is_not_reused(
    mlflow_store: str, params: dict[str, object], tags: dict[str, str]
) -> None:
    _run(PARAMS)
    _run(params, fail=True)  # the wanted configuration only ever failed
    assert find_finished_run({"stage": "individual", **tags}, params) is None


def test_runs_found_before_give_the_same_answer_without_a_search(mlflow_store: str) -> None:
    wanted = _run(PARAMS)
    other_patient = _run(PARAMS, TAGS | {"patient": "233"})
    among = find_runs(TAGS)
    assert {run.run_id for run in among} == {wanted, other_patient}
    found = find_finished_run({"patient": "119"}, PARAMS, among)
    assert found is not None
    assert found.run_id == wanted
    assert find_finished_run({"patient": "119"}, PARAMS | {"train.lr": 0.1}, among) is None
