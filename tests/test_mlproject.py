"""The MLproject file: its entry points call the CLI with every parameter, defaults matching."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
from mlflow.projects import _project_spec

from ecg_platform.cli import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ("pretrain", "individual", "finetune")
HYPERPARAMETERS = (
    "data_dir",
    "preset",
    "patient",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "scheduler",
    "weight_decay",
    "weighted_sampling",
    "early_stopping",
    "seed",
    "num_blocks",
    "block_channels",
    "kernel_size",
)


@pytest.fixture(scope="module")
def project() -> _project_spec.Project:
    return _project_spec.load_project(str(REPO_ROOT))


def _option(command: click.Command, parameter: str) -> click.Option:
    flag = "--" + parameter.replace("_", "-")
    return next(opt for opt in command.params if isinstance(opt, click.Option) and flag in opt.opts)


def test_the_training_entry_points_exist_with_the_conda_env(
    project: _project_spec.Project,
) -> None:
    assert set(ENTRY_POINTS) <= set(project._entry_points)
    assert project.env_config_path == str(REPO_ROOT / "conda.yaml")


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_parameter_is_passed_to_its_cli_option(
    project: _project_spec.Project, entry_point: str
) -> None:
    spec = project.get_entry_point(entry_point)
    expected = set(HYPERPARAMETERS) | (
        {"pretrained", "force", "encoder_lr_scale"} if entry_point == "finetune" else set()
    )
    assert set(spec.parameters) == expected
    words = shlex.split(spec.command)
    assert words[:2] == ["ecg-platform", entry_point]
    command = cli.commands[entry_point]
    for name in spec.parameters:
        option = _option(command, name)
        assert words[words.index(option.opts[0]) + 1] == "{" + name + "}"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_defaults_parse_to_the_cli_defaults(
    project: _project_spec.Project, entry_point: str
) -> None:
    spec = project.get_entry_point(entry_point)
    required = {name: "119" for name, param in spec.parameters.items() if param.default is None}
    words = shlex.split(spec.compute_command(required, storage_dir=None))
    command = cli.commands[entry_point]
    via_mlproject = command.make_context(entry_point, words[2:]).params
    cli_args = [arg for name, value in required.items() for arg in (f"--{name}", value)]
    assert via_mlproject == command.make_context(entry_point, cli_args).params
