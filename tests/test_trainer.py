"""The trainer on a small real patient: stopping, restoring, resuming, repeating, fine-tuning."""

from __future__ import annotations

import ast
import copy
import logging
import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ecg_platform.engine
from ecg_platform.data.dataset import StudyData
from ecg_platform.data.loaders import TensorSplit, patient_splits
from ecg_platform.engine.checkpoint import load_checkpoint, save_checkpoint
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.history import EpochRecord, FitResult
from ecg_platform.engine.inference import evaluate, predict_proba
from ecg_platform.engine.optim import LrSchedule, build_optimizer
from ecg_platform.engine.runtime import (
    cpu_threads,
    resolve_device,
    seed_everything,
    small_batch_kernels,
)
from ecg_platform.engine.trainer import fit
from ecg_platform.errors import EcgPlatformError
from ecg_platform.evaluation.metrics import binary_metrics, classification_metrics
from ecg_platform.models.cnn1d import CNN1D
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import freeze_encoder

# fit and evaluate with the metrics the workflows pass
train_model = partial(fit, metrics=classification_metrics)
score_model = partial(evaluate, metrics=classification_metrics)
# One thread: these runs are tiny, and two threads on a busy two-core machine stall each other.
FAST = TrainConfig(epochs=2, batch_size=16, scheduler="none", threads=1)


@pytest.fixture(scope="module")
def patient(excerpt_study: StudyData) -> dict[str, TensorSplit]:
    """Record 233's five-minute excerpt: 192 train, 48 validation, 60 test windows."""
    return patient_splits([excerpt_study.patients["233"]], "cpu")


def new_model(seed: int = 0) -> CNN1D:
    seed_everything(seed)
    return CNN1D()


def outcomes(result: FitResult) -> list[tuple]:
    """Everything an epoch produced except its wall time."""
    return [(r.epoch, r.lr, r.train, r.val) for r in result.history]


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


class Recorder:
    """A callback that keeps every record and the weights of every new best epoch."""

    def __init__(self) -> None:
        self.records: list[EpochRecord] = []
        self.best_flags: list[bool] = []
        self.best_weights: dict[str, torch.Tensor] = {}
        self.models: list[nn.Module] = []

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None:
        self.records.append(record)
        self.best_flags.append(is_best)
        self.models.append(model)
        if is_best:
            self.best_weights = copy.deepcopy(model.state_dict())


class WeightsEachEpoch:
    """A callback that keeps a copy of the weights after every epoch."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None:
        self.weights.append(copy.deepcopy(model.state_dict()))


class CrashAt:
    """A callback that fails at one epoch, like a killed process."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None:
        if record.epoch == self.epoch:
            raise KeyboardInterrupt


def test_same_seed_same_run(patient: dict[str, TensorSplit]) -> None:
    first, second = new_model(), new_model()
    config = FAST.replace(weighted_sampling=True)
    one = train_model(first, patient["train"], patient["val"], config, progress=False)
    two = train_model(second, patient["train"], patient["val"], config, progress=False)
    assert outcomes(one) == outcomes(two)
    assert_same_weights(first, second)


def test_augmentation_is_seeded_and_changes_training(patient: dict[str, TensorSplit]) -> None:
    train, val = patient["train"], patient["val"]
    augmented = FAST.replace(augment=0.3)
    one = train_model(new_model(), train, val, augmented, progress=False)
    two = train_model(new_model(), train, val, augmented, progress=False)
    plain = train_model(new_model(), train, val, FAST, progress=False)
    assert outcomes(one) == outcomes(two)
    assert [r.train for r in one.history] != [r.train for r in plain.history]
    assert [r.val for r in one.history] != [r.val for r in plain.history]
    assert torch.isfinite(train.x).all() and train.x.std() > 0  # the split itself untouched


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "batch size and epochs must be at least 1"),
        ({"batch_size": 0}, "batch size and epochs must be at least 1"),
        ({"augment": -0.1}, "augmentation strength must be >= 0, got -0.1"),
        ({"average_last": -1}, "epochs to average must be >= 0, got -1"),
        ({"average_last": 2, "early_stopping": True}, "needs a known last epoch"),
    ],
)
def test_settings_that_cannot_train_are_refused_when_made(
    change: dict[str, object], message: str
) -> None:
    """Whatever makes the config (the CLI, study.toml, a benchmark's JSON), before any run."""
    with pytest.raises(EcgPlatformError, match=message):
        FAST.replace(**change)


def test_augmentation_needs_an_encoder_that_sees_the_windows(
    patient: dict[str, TensorSplit],
) -> None:
    train, val = patient["train"], patient["val"]
    frozen = FAST.replace(augment=0.3, encoder_lr_scale=0.0)
    with pytest.raises(EcgPlatformError, match="frozen encoder"):
        train_model(new_model(), train, val, frozen, progress=False)


def test_early_stopping_restores_the_best_weights(patient: dict[str, TensorSplit]) -> None:
    config = FAST.replace(
        epochs=20,
        scheduler="reducelr",
        early_stopping=True,
        early_stopping_patience=3,
        early_stopping_min_epochs=5,
    )
    model, recorder = new_model(), Recorder()
    result = train_model(
        model, patient["train"], patient["val"], config, [recorder], progress=False
    )
    val_losses = [r.val["loss"] for r in result.history]
    assert result.stopped_early and len(result.history) < config.epochs
    assert len(result.history) == result.best_epoch + config.early_stopping_patience
    assert result.best_val_loss == min(val_losses) == val_losses[result.best_epoch - 1]
    assert result.best is result.history[result.best_epoch - 1]
    assert recorder.records == result.history
    assert recorder.best_flags == [
        loss == min(val_losses[: i + 1]) for i, loss in enumerate(val_losses)
    ]
    assert model.state_dict().keys() == recorder.best_weights.keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, recorder.best_weights[name]), name
    assert score_model(model, patient["val"])["loss"] == pytest.approx(
        result.best_val_loss, rel=1e-6
    )


@pytest.mark.parametrize(("average_last", "first_averaged"), [(2, 3), (9, 1)])
def test_averaging_keeps_the_mean_of_the_last_epochs(
    patient: dict[str, TensorSplit], average_last: int, first_averaged: int
) -> None:
    """The kept weights are the mean of the last `average_last` epochs' (all four when it asks
    for more), and the validation metrics reported for them are theirs."""
    config = FAST.replace(epochs=4, average_last=average_last)
    model, kept = new_model(), WeightsEachEpoch()
    result = train_model(model, patient["train"], patient["val"], config, [kept], progress=False)
    averaged = kept.weights[first_averaged - 1 :]
    for name, tensor in model.state_dict().items():
        mean = torch.stack([weights[name] for weights in averaged]).mean(0)
        torch.testing.assert_close(tensor, mean, rtol=1e-5, atol=1e-7, msg=name)
    assert result.averaged_epochs == len(averaged)
    assert result.kept == f"the mean of epochs {first_averaged}-4"
    assert result.kept_val == result.averaged_val == score_model(model, patient["val"])
    assert result.kept_val != result.best.val  # the best epoch is reported, not kept
    plain = train_model(new_model(), patient["train"], patient["val"], FAST, progress=False)
    assert (plain.kept_val, plain.kept) == (
        plain.best.val,
        f"epoch {plain.best_epoch} (lowest validation loss)",
    )


def test_an_averaged_checkpoint_refuses_another_last_epoch(
    patient: dict[str, TensorSplit], tmp_path: Path
) -> None:
    train, val = patient["train"], patient["val"]
    averaging = FAST.replace(average_last=2)
    path = tmp_path / "checkpoint.pt"
    train_model(new_model(), train, val, averaging, checkpoint_path=path, progress=False)
    longer = averaging.replace(epochs=3)
    with pytest.raises(EcgPlatformError, match="resume it with 2 epochs"):
        train_model(new_model(), train, val, longer, checkpoint_path=path, resume=True)


def test_no_early_stop_before_the_minimum_epochs(patient: dict[str, TensorSplit]) -> None:
    config = FAST.replace(
        epochs=4,
        lr=1e-12,
        early_stopping=True,
        early_stopping_patience=1,
        early_stopping_min_epochs=3,
    )
    result = train_model(new_model(), patient["train"], patient["val"], config, progress=False)
    assert len(result.history) == 3 and result.stopped_early


@pytest.mark.parametrize(
    ("augment", "average_last"), [(0.0, 0), (0.3, 0), (0.0, 3)], ids=["plain", "augmented", "mean"]
)
def test_resume_equals_an_uninterrupted_run(
    patient: dict[str, TensorSplit], tmp_path: Path, augment: float, average_last: int
) -> None:
    """Killed at epoch 3 (the averaged run: one epoch into its mean of epochs 2-4)."""
    config = FAST.replace(
        epochs=4,
        weighted_sampling=True,
        scheduler="cycliclr",
        cyclic_half_cycle_epochs=1,
        augment=augment,
        average_last=average_last,
    )
    train, val = patient["train"], patient["val"]
    whole = new_model()
    expected = train_model(whole, train, val, config, progress=False)

    path = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train_model(
            new_model(), train, val, config, [CrashAt(3)], checkpoint_path=path, progress=False
        )
    resumed_model = new_model(seed=123)  # other initial weights: the checkpoint must win
    resumed = train_model(resumed_model, train, val, config, checkpoint_path=path, resume=True)
    assert outcomes(resumed) == outcomes(expected)
    assert (resumed.best_epoch, resumed.best_val_loss, resumed.kept_val) == (
        expected.best_epoch,
        expected.best_val_loss,
        expected.kept_val,
    )
    assert_same_weights(resumed_model, whole)
    done_before = resumed.resumed_epochs
    assert 0 < done_before < 4  # restored; the time table counts the epochs trained here
    assert resumed.seconds_trained_here == sum(r.seconds for r in resumed.history[done_before:])

    finished = train_model(new_model(seed=7), train, val, config, checkpoint_path=path, resume=True)
    assert outcomes(finished) == outcomes(expected)  # nothing left to train
    assert (finished.resumed_epochs, finished.seconds_trained_here) == (4, 0)


def test_resume_refuses_other_settings(patient: dict[str, TensorSplit], tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    train_model(
        new_model(), patient["train"], patient["val"], FAST, checkpoint_path=path, progress=False
    )
    with pytest.raises(EcgPlatformError, match=r"other settings \(lr: 0.001 -> 0.01\)"):
        train_model(
            new_model(),
            patient["train"],
            patient["val"],
            FAST.replace(lr=1e-2),
            checkpoint_path=path,
            resume=True,
        )
    with pytest.raises(EcgPlatformError, match="needs a checkpoint path"):
        train_model(new_model(), patient["train"], patient["val"], FAST, resume=True)


def test_a_checkpoint_older_than_a_setting_resumes_under_its_default(
    patient: dict[str, TensorSplit], tmp_path: Path
) -> None:
    """A checkpoint written before `average_last` existed lacks it: it resumes with the default
    (0), and refuses any other value as another setting."""
    path = tmp_path / "checkpoint.pt"
    train, val = patient["train"], patient["val"]
    train_model(new_model(), train, val, FAST, checkpoint_path=path, progress=False)
    state = load_checkpoint(path)
    del state["config"]["average_last"], state["averaged"]
    save_checkpoint(path, state)
    resumed = train_model(new_model(), train, val, FAST, checkpoint_path=path, resume=True)
    assert resumed.resumed_epochs == FAST.epochs
    with pytest.raises(EcgPlatformError, match=r"average_last: 0 -> 2"):
        averaging = FAST.replace(average_last=2)
        train_model(new_model(), train, val, averaging, checkpoint_path=path, resume=True)


def test_resume_refuses_another_models_checkpoint(
    patient: dict[str, TensorSplit], tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.pt"
    train, val = patient["train"], patient["val"]
    train_model(new_model(), train, val, FAST, checkpoint_path=path, progress=False)
    three_classes = CNN1D(ModelConfig(num_outputs=3))
    with pytest.raises(EcgPlatformError, match="holds another model's weights"):
        train_model(three_classes, train, val, FAST, checkpoint_path=path, resume=True)


def test_finetune_head_equals_training_the_frozen_network(
    patient: dict[str, TensorSplit],
) -> None:
    config = FAST.replace(epochs=3, weighted_sampling=True, scheduler="cosine")
    frozen = new_model()
    cached = copy.deepcopy(frozen)
    encoder_before = copy.deepcopy(frozen.encoder.state_dict())
    head_before = copy.deepcopy(frozen.head.state_dict())
    freeze_encoder(frozen)
    full = train_model(frozen, patient["train"], patient["val"], config, progress=False)
    recorder = Recorder()
    head_only = config.replace(encoder_lr_scale=0.0)  # fit's way to `finetune_head`
    fast = train_model(
        cached, patient["train"], patient["val"], head_only, [recorder], progress=False
    )

    assert [r.lr for r in fast.history] == [r.lr for r in full.history]
    for a, b in zip(fast.history, full.history, strict=True):
        assert a.val == pytest.approx(b.val, rel=1e-5, abs=1e-6)
        assert a.train == pytest.approx(b.train, rel=1e-5, abs=1e-6)
    for name, tensor in frozen.head.state_dict().items():
        torch.testing.assert_close(cached.head.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
    for name, tensor in cached.encoder.state_dict().items():
        assert torch.equal(tensor, encoder_before[name]), name  # bit-identical: frozen
    assert any(not torch.equal(t, head_before[n]) for n, t in cached.head.state_dict().items())
    assert all(model is cached for model in recorder.models)  # callbacks see the whole model


def test_the_encoder_learns_at_its_scaled_rate(patient: dict[str, TensorSplit]) -> None:
    config = FAST.replace(lr=1e-2, scheduler="cycliclr", encoder_lr_scale=0.1)
    model = new_model()
    groups = model.parameter_groups(config.lr, config.encoder_lr_scale)
    assert [group["lr"] for group in groups] == [1e-2, pytest.approx(1e-3)]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.encoder.parameters()}
    assert sum(p.numel() for group in groups for p in group["params"]) == 67_169
    optimizer = build_optimizer(groups, config)
    LrSchedule(optimizer, config, steps_per_epoch=10)  # cycles each group from lr x 0.1
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([1e-3, 1e-4])
    encoder_before = copy.deepcopy(model.encoder.state_dict())
    train_model(model, patient["train"], patient["val"], config, progress=False)
    changed = [not torch.equal(t, encoder_before[n]) for n, t in model.encoder.state_dict().items()]
    assert all(changed)


@pytest.mark.parametrize(("nesterov", "first_step"), [(False, 1.0), (True, 1.9)])
def test_one_sgd_step_moves_each_part_by_its_own_rate(
    patient: dict[str, TensorSplit], nesterov: bool, first_step: float
) -> None:
    """What ran, not only that it ran: one full-batch step of SGD (momentum 0.9, no weight
    decay) moves the head by lr x g and the encoder by lr x 0.1 x g, g the loss gradient
    computed here; Nesterov's first step is (1 + momentum) times that, plain momentum's not."""
    train, lr = patient["train"], 1.0  # large steps: far above the weights' float32 rounding
    config = FAST.replace(
        optimizer="sgd", momentum=0.9, nesterov=nesterov, lr=lr, weight_decay=0.0,
        encoder_lr_scale=0.1, epochs=1, batch_size=len(train), weighted_sampling=False,
    )  # fmt: skip
    model = new_model()
    start = copy.deepcopy(model)
    F.binary_cross_entropy_with_logits(start.logits(train.x), train.y.float()).backward()
    train_model(model, train, patient["val"], config, progress=False)
    for (name, after), (_, before) in zip(
        model.named_parameters(), start.named_parameters(), strict=True
    ):
        rate = lr * (0.1 if name.startswith("encoder.") else 1.0) * first_step
        step, expected = (after - before).detach(), -rate * before.grad
        # to 0.1% of the tensor's largest step: float32 weights round the smallest steps
        tolerance = 1e-3 * expected.abs().max().item()
        torch.testing.assert_close(
            step, expected, rtol=1e-3, atol=tolerance, msg=lambda text, key=name: f"{key}: {text}"
        )


def test_divergence_names_the_epoch_and_learning_rate(patient: dict[str, TensorSplit]) -> None:
    config = FAST.replace(optimizer="sgd", lr=1e3)
    with pytest.raises(EcgPlatformError, match=r"diverged at epoch 1 \(learning rate 1000\)"):
        train_model(new_model(), patient["train"], patient["val"], config, progress=False)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"scheduler": "none"}, [1e-3, 1e-3, 1e-3]),
        ({"scheduler": "cosine"}, [1e-3, 1e-3 * 0.75, 1e-3 * 0.25]),  # (1 + cos(pi k / 3)) / 2
        ({"scheduler": "cycliclr", "cyclic_half_cycle_epochs": 1}, [1e-4, 1e-3, 1e-4]),
        (
            {"scheduler": "reducelr", "plateau_patience": 1, "lr": 1e-12, "epochs": 4},
            [1e-12, 1e-12, 1e-12, 5e-13],
        ),
    ],
)
def test_learning_rate_schedules(
    patient: dict[str, TensorSplit], changes: dict, expected: list[float]
) -> None:
    config = FAST.replace(**{"epochs": 3, "batch_size": 64, **changes})
    result = train_model(new_model(), patient["train"], patient["val"], config, progress=False)
    assert [r.lr for r in result.history] == pytest.approx(expected, rel=1e-6)


def test_sgd_and_nesterov(patient: dict[str, TensorSplit]) -> None:
    config = FAST.replace(optimizer="sgd", nesterov=True, lr=1e-2)
    optimizer = build_optimizer(new_model().parameter_groups(config.lr, 1.0), config)
    assert type(optimizer) is torch.optim.SGD
    assert [(g["nesterov"], g["momentum"]) for g in optimizer.param_groups] == [(True, 0.9)]
    result = train_model(new_model(), patient["train"], patient["val"], config, progress=False)
    assert all(math.isfinite(r.val["loss"]) for r in result.history)
    with pytest.raises(EcgPlatformError, match="Nesterov momentum needs"):
        train_model(new_model(), patient["train"], patient["val"], config.replace(momentum=0.0))


def test_bad_inputs_are_refused(patient: dict[str, TensorSplit]) -> None:
    train, val = patient["train"], patient["val"]
    empty = TensorSplit(val.x[:0], val.y[:0])
    with pytest.raises(EcgPlatformError, match="both splits need windows"):
        train_model(new_model(), train, empty, FAST)
    broken = TensorSplit(train.x.clone(), train.y)
    broken.x[3, 0, 7] = math.nan
    with pytest.raises(EcgPlatformError, match="NaN or infinite"):
        train_model(new_model(), broken, val, FAST)


def test_one_log_line_per_epoch_without_a_terminal(
    patient: dict[str, TensorSplit],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="ecg_platform"):
        # stderr is not a terminal here
        train_model(new_model(), patient["train"], patient["val"], FAST)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2 and capsys.readouterr().out == ""
    assert lines[0].startswith("epoch 1/2 train loss ") and "val loss" in lines[0]
    assert lines[1].startswith("epoch 2/2 ")


def test_progress_bar_on_request(
    patient: dict[str, TensorSplit], capsys: pytest.CaptureFixture[str]
) -> None:
    train_model(new_model(), patient["train"], patient["val"], FAST, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "12/12" in err


def test_predictions_and_evaluation_agree(patient: dict[str, TensorSplit]) -> None:
    model = new_model()
    test = patient["test"]
    probs = predict_proba(model, test.x, batch_size=7)
    assert probs.shape == (len(test),) and ((probs >= 0) & (probs <= 1)).all()
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(probs), model(test.x))
    got = score_model(model, test)
    expected = binary_metrics(test.y.numpy(), probs, loss=got["loss"])
    assert got == pytest.approx(expected, nan_ok=True)


class ThreadProbe:
    """A callback noting the torch thread count during training."""

    threads = 0

    def on_epoch_end(self, record: EpochRecord, model: nn.Module, is_best: bool) -> None:
        self.threads = torch.get_num_threads()


def test_small_batches_train_on_one_thread(patient: dict[str, TensorSplit]) -> None:
    before = torch.get_num_threads()
    probe = ThreadProbe()
    train_model(
        new_model(), patient["train"], patient["val"], FAST.replace(batch_size=4, epochs=1), [probe]
    )
    assert probe.threads == 1 and torch.get_num_threads() == before
    assert torch.backends.mkldnn.enabled  # switched off for the training steps only
    with cpu_threads(0, batch_size=32) as chosen:
        assert chosen == before == torch.get_num_threads()
    with cpu_threads(3, batch_size=4) as chosen:
        assert chosen == 3 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_small_batches_use_pytorchs_own_convolutions() -> None:
    assert torch.backends.mkldnn.enabled
    with small_batch_kernels(batch_size=4):
        assert not torch.backends.mkldnn.enabled
    with small_batch_kernels(batch_size=16):
        assert torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled


def test_device_resolution() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(EcgPlatformError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(EcgPlatformError, match="unknown device"):
        resolve_device("abacus")


def test_the_engine_knows_models_only_by_their_protocol() -> None:
    """The data flow: the engine imports data and the model protocol, nothing downstream."""
    modules = set()
    for path in Path(ecg_platform.engine.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
    ours = {name for name in modules if name.startswith("ecg_platform.")}
    downstream = ("evaluation", "tracking", "workflows", "cli")
    assert not [name for name in ours if name.split(".")[1] in downstream]
    assert {name for name in ours if name.startswith("ecg_platform.models")} == {
        "ecg_platform.models.protocol"
    }
    assert "mlflow" not in {name.split(".")[0] for name in modules}


DENORMALS_SURVIVING = """
import sys, torch
if sys.argv[1] == "engine":
    import ecg_platform.engine.trainer
torch.set_num_threads(2)
tiny = torch.full((1 << 20,), 1e-39)  # denormal in float32
print(int(torch.count_nonzero(tiny * 3 + tiny)))
"""


@pytest.mark.parametrize(("imported", "surviving"), [("engine", 0), ("torch only", 1 << 20)])
def test_importing_the_trainer_flushes_denormals_in_every_thread(
    imported: str, surviving: int
) -> None:
    """Denormal maths is many times slower; the engine's processes compute none (the control:
    plain torch keeps them). A fresh process: its threads copy the mode they start with."""
    command = [sys.executable, "-c", DENORMALS_SURVIVING, imported]
    assert int(subprocess.run(command, check=True, capture_output=True, text=True).stdout) == (
        surviving
    )
