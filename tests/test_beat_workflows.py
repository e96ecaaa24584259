"""The study's three stages on the patient-specific beat protocol, through the real CLI: AAMI
classes end to end, each protocol's own registered models, and the report's VEB/SVEB."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from scipy.stats import t

from ecg_platform.cli import cli
from ecg_platform.data.beat_dataset import load_beat_study
from ecg_platform.data.config import data_config
from ecg_platform.evaluation.aami import gross
from ecg_platform.evaluation.metrics import matrix_from_metrics, metrics_from_matrix
from ecg_platform.tracking.model_io import PYFUNC_CONFIG, load_state_dict
from ecg_platform.tracking.run_search import artifact_json

PATIENTS = ("200", "213")  # two records of 200-234, rich in V and S beats


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    if result.exit_code != 0 and result.exc_info is not None:  # where an uncaught error came from
        raise AssertionError(result.output) from result.exc_info[1]
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_three_stages_and_the_aami_report_on_the_patient_specific_protocol(
    mlflow_store: str, shared_data_dir: Path, beat_cache: Path, tmp_path: Path
) -> None:
    source = ("--preset", "patient-specific", "--data-dir", str(shared_data_dir))
    source += ("--cache-dir", str(beat_cache))
    patients = ",".join(PATIENTS)
    one_epoch = ("--patient", patients, "--epochs", "1")
    _run("pretrain", *source, *one_epoch)
    _run("individual", *source, *one_epoch, "--workers", "1")
    _run("finetune", *source, *one_epoch, "--workers", "1")
    _run("report", *source, "--patient", patients, "--out", str(tmp_path / "report"))

    client = MlflowClient()
    config = data_config("patient-specific")
    study = load_beat_study(shared_data_dir, config, beat_cache)
    finetuned = {}
    for patient in PATIENTS:
        version = client.get_model_version_by_alias(
            f"ecg-finetuned-{patient}-patient-specific", "champion"
        )
        run = client.get_run(version.run_id)
        assert run.data.params["model.num_outputs"] == "5"
        matrix = matrix_from_metrics(run.data.metrics, "test_")
        test_labels = study.part(patient, "test").y  # the data layer's own test beats
        np.testing.assert_array_equal(matrix.sum(1), np.bincount(test_labels, minlength=5))
        finetuned[patient] = matrix
    pretrained = client.get_model_version_by_alias("ecg-pretrained-patient-specific", "champion")
    generic = artifact_json(pretrained.run_id, "generic_confusions.json")
    assert sorted(generic) == sorted(PATIENTS)

    aami = json.loads((tmp_path / "report" / "aami.json").read_text())
    assert set(aami) == {"generic", "individual", "finetune"}
    assert set(aami["finetune"]) == {"44", "24"}
    expected = gross(finetuned.values(), config.class_names)  # independent of the report
    for task in ("VEB", "SVEB"):
        assert aami["finetune"]["24"][task]["se"] == pytest.approx(100 * expected[task]["se"])
        assert aami["finetune"]["24"][task]["ppv"] == pytest.approx(100 * expected[task]["ppv"])
    markdown = (tmp_path / "report" / "aami.md").read_text()
    assert "Kiranyaz et al. 2016" in markdown and "| finetune |" in markdown
    table = pd.read_csv(tmp_path / "report" / "comparison.csv", dtype={"patient": str})
    assert "finetune_sensitivity" not in table  # a binary metric: no K-class run logs it
    for patient in PATIENTS:
        row = table.set_index("patient").loc[patient]
        expected_f1 = metrics_from_matrix(finetuned[patient])["macro_f1"]
        assert row["finetune_macro_f1"] == pytest.approx(expected_f1)


@pytest.mark.slow
def test_the_study_table_is_not_used_on_another_protocol(
    mlflow_store: str, shared_data_dir: Path, beat_cache: Path
) -> None:
    source = ("--preset", "patient-specific", "--data-dir", str(shared_data_dir))
    _run("individual", *source, "--cache-dir", str(beat_cache), "--patient", "213", "--epochs", "1")
    version = MlflowClient().get_model_version_by_alias(
        "ecg-individual-213-patient-specific", "champion"
    )
    run = MlflowClient().get_run(version.run_id)
    assert run.data.tags["hparams_source"] == "defaults"  # the paper table says batch 4 for 213
    assert run.data.params["train.batch_size"] == "32"


def test_the_paper_preset_offers_no_other_label_set(mlflow_store: str, excerpt_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["individual", "--data-dir", str(excerpt_dir), "--patient", "233", "--label-set", "aami"],
    )
    assert result.exit_code != 0
    assert "label set binary, no RR features" in result.output


def test_data_summary_json_of_a_beat_preset(shared_data_dir: Path, beat_cache: Path) -> None:
    source = ("--preset", "patient-specific", "--data-dir", str(shared_data_dir))
    output = _run("data", "summary", *source, "--cache-dir", str(beat_cache), "--json")
    summary = json.loads(output)
    assert summary["common"] == {"N": 75, "S": 75, "V": 75, "F": 13, "Q": 7}
    rows = {row["record"]: row for row in summary["records"]}
    assert len(rows) == 48 and not rows["102"]["selected"] and rows["213"]["selected"]
    assert set(rows["213"]) >= {"record", "selected", "train", "test"}
    assert set(rows["213"]["test"]) == {"N", "S", "V", "F", "Q"}


def test_rr_features_reach_the_head_and_the_served_model(
    mlflow_store: str, shared_data_dir: Path, beat_cache: Path
) -> None:
    """With RR features the registered model takes each window followed by its 5 RR values
    (one tensor, as pyfunc serves it), and fine-tuning starts from those weights; the pretrained
    model registered is the mean of its two epochs' weights, as asked."""
    source = ("--preset", "patient-specific", "--data-dir", str(shared_data_dir))
    source += ("--cache-dir", str(beat_cache), "--rr-features", "auto")
    _run("pretrain", *source, "--patient", "200,213", "--epochs", "2", "--average-last", "2")
    pretrained = MlflowClient().get_model_version_by_alias(
        "ecg-pretrained-patient-specific", "champion"
    )
    assert "of the mean of epochs 1-2," in pretrained.description
    _run("finetune", *source, "--patient", "213", "--epochs", "1")
    name = "ecg-finetuned-213-patient-specific"
    version = MlflowClient().get_model_version_by_alias(name, "champion")
    assert MlflowClient().get_run(version.run_id).data.params["model.extra_features"] == "5"
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion", model_config=PYFUNC_CONFIG)
    config = data_config("patient-specific", rr_features=True)
    beats = load_beat_study(shared_data_dir, config, beat_cache).part("213", "test")
    inputs = np.concatenate([beats.x[:8], beats.rr[:8]], axis=1)[:, None, :]
    probabilities = served.predict(inputs.astype(np.float32))
    assert probabilities.shape == (8, 5)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    weights = load_state_dict(f"models:/{name}@champion")
    assert "head.output.weight" in weights  # the model's own names, not the wrapper's


@pytest.mark.slow
def test_reproduce_with_repeats_reports_means_and_intervals_over_training_seeds(
    mlflow_store: str, shared_data_dir: Path, beat_cache: Path, tmp_path: Path
) -> None:
    source = ("--preset", "patient-specific", "--data-dir", str(shared_data_dir))
    source += ("--cache-dir", str(beat_cache), "--out", str(tmp_path / "report"))
    study = ("--patient", ",".join(PATIENTS), "--epochs", "1", "--pretrain-epochs", "1")
    _run("reproduce", *source, *study, "--repeats", "2", "--workers", "1")

    runs = pd.read_csv(tmp_path / "report" / "runs.csv", dtype={"patient": str})
    finetune = runs[runs["mode"] == "finetune"]
    assert sorted(finetune["repeat"]) == [1, 1, 2, 2]
    client, class_names = MlflowClient(), data_config("patient-specific").class_names
    seeds, per_repeat_se = set(), []
    for _, rows in finetune.groupby("repeat"):
        matrices = []
        for run_id in rows["run_id"]:
            run = client.get_run(run_id)
            seeds.add(run.data.params["train.seed"])
            matrices.append(matrix_from_metrics(run.data.metrics, "test_"))
        per_repeat_se.append(100 * gross(matrices, class_names)["VEB"]["se"])
    assert seeds == {"42", "43"}
    veb = json.loads((tmp_path / "report" / "aami.json").read_text())["finetune"]["24"]["VEB"]
    mean, half = np.mean(per_repeat_se), t.ppf(0.975, 1) * np.std(per_repeat_se, ddof=1) / 2**0.5
    assert veb["se"] == pytest.approx(mean)
    assert veb["se_ci"] == pytest.approx([mean - half, mean + half])
    assert "Fine-tuned minus individual" in (tmp_path / "report" / "aami.md").read_text()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "individual, paired by repeat, " in report
    sveb = _f1_difference(tmp_path / "report" / "aami.md", "44", "SVEB")
    assert "over record set 44 (2 records), fine-tuned minus individual, paired by" in report
    assert f"SVEB {sveb[0]:+.1f} [{sveb[1]:.1f}, {sveb[2]:.1f}] points." in report

    # the report command on the reproduce run finds the same two repeats
    (reproduce,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.stage = 'reproduce'"
    )
    again = tmp_path / "again"
    source = (*source[:-1], str(again))
    _run("report", *source, "--patient", ",".join(PATIENTS), "--parents", reproduce.info.run_id)
    assert (again / "report.md").read_text().splitlines()[3:6] == report.splitlines()[3:6]


def _f1_difference(aami_md: Path, record_set: str, task: str) -> tuple[float, float, float]:
    """The fine-tuned minus individual row of `task` under `record_set` in aami.md."""
    section = aami_md.read_text().split(f"## {record_set} records")[1].split("## ")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {task} | "))
    mean, interval = row.split(" | ")[1:3]
    low, high = interval.strip("[] |").split(", ")
    return float(mean), float(low), float(high)
