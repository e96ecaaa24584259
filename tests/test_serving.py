"""The pipeline model behind a real `mlflow models serve` on 127.0.0.1: a raw 10-second strip
gets what `ecg-platform predict` writes for the same samples; a bad body gets a 4xx with a
clear line, never a 500."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import wfdb
from click.testing import CliRunner
from mlflow import MlflowClient

from ecg_platform.cli import cli
from ecg_platform.tracking.model_serving import model_server

RECORD, START_S, END_S, FS = "119", 60, 70, 360
SOURCE = "models:/ecg-individual-119@champion"


@pytest.fixture(scope="module")
def served(
    trained_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(server URL, tracking URI): the 119 model's pipeline, registered and served."""
    import mlflow

    store = tmp_path_factory.mktemp("serving") / "store"
    shutil.copytree(trained_store, store)
    uri = f"sqlite:///{store}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(store)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        result = CliRunner().invoke(cli, ["pipeline", "--model", "models:/ecg-individual-119@1"])
        assert result.exit_code == 1 and "no model at models:/ecg-individual-119@1" in result.output
        result = CliRunner().invoke(cli, ["pipeline", "--model", SOURCE])
        assert result.exit_code == 0, result.output
        name = "ecg-individual-119-pipeline"
        version = MlflowClient().get_model_version_by_alias(name, "champion")
        assert version.tags["source_model"] == "models:/ecg-individual-119/1"
        log = store / "serve.log"
        with model_server(f"models:/{name}@champion", log) as url:
            yield url, uri
        mlflow.set_tracking_uri(None)


def _post(url: str, body: str | bytes) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return requests.post(f"{url}/invocations", data=body, headers=headers, timeout=60)


def test_a_raw_strip_gets_what_predict_writes(
    served: tuple[str, str], excerpt_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tracking_uri = served
    strip = wfdb.rdrecord(
        str(excerpt_dir / RECORD), channels=[0], sampfrom=START_S * FS, sampto=END_S * FS
    ).p_signal[:, 0]
    response = _post(url, json.dumps({"inputs": {"samples": strip.tolist(), "fs": FS}}))
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    args = ["predict", "--model", SOURCE, "--out", str(tmp_path)]
    args += ["--record", str(excerpt_dir / RECORD), "--start", str(START_S), "--end", str(END_S)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    windows = pd.read_csv(tmp_path / "predictions.csv")
    beats = pd.read_csv(tmp_path / "beats.csv")
    np.testing.assert_allclose(
        answer["windows"]["probability_abnormal"], windows["probability_abnormal"], rtol=1e-12
    )
    assert answer["windows"]["predicted"] == windows["predicted"].tolist()
    np.testing.assert_allclose(np.add(answer["beats"]["time_s"], START_S), beats["time_s"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("windows", "class_counts", "abnormal_burden_percent", "beats", "beats_per_minute"):
        assert answer["summary"][key] == summary[key]


NAN_10_MIN = "[" + ",".join(["NaN"] * (10 * 60 * FS)) + "]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"inputs": {"samples": [[1, 2], [3, 4]], "fs": 360}}', "must be one lead"),
        ('{"inputs": {"samples": "text", "fs": 360}}', "samples must be numbers"),
        ("some text", "valid JSON"),
        ("", "valid JSON"),
        ('{"inputs": {"samples": [0.1, 0.2, 0.3], "fs": 0}}', "sampling rate 0 Hz"),
        ('{"inputs": {"samples": ' + NAN_10_MIN + ', "fs": 360}}', "216000 of 216000 samples"),
        ('{"inputs": {"samples": [0.1, 0.2]}}', "needs samples and fs"),
    ],
    ids=["wrong-shape", "text-samples", "text-body", "empty", "fs-0", "10-min-nan", "no-fs"],
)
def test_a_bad_body_gets_a_4xx_with_a_clear_message(
    served: tuple[str, str], body: str, message: str
) -> None:
    response = _post(served[0], body)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["message"]
