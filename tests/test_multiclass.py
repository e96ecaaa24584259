"""The K-class path end to end: a synthetic 3-class problem whose classes 0 and 1 differ only in
a side feature (as RR intervals tell beats apart), trained, evaluated and fine-tuned."""

from __future__ import annotations

import copy
import math
from functools import partial

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from ecg_platform.data.loaders import TensorSplit, tensor_split
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.history import FitResult
from ecg_platform.engine.inference import evaluate, predict_proba
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import Classifier, freeze_encoder
from ecg_platform.models.registry import build_model

CLASSES = 3
LENGTH = 128
MODEL = ModelConfig(
    num_blocks=2, block_channels=8, hidden_units=16, num_outputs=CLASSES, extra_features=1
)
CONFIG = TrainConfig(epochs=10, batch_size=16, lr=1e-2, scheduler="none", threads=1)
train_model = partial(fit, metrics=classification_metrics)
score_model = partial(evaluate, metrics=classification_metrics)


def synthetic_split(counts: tuple[int, ...], seed: int) -> TensorSplit:
    """Classes 0 and 1: a slow sine, told apart only by the side feature (-1 or +1); class 2: a
    fast sine with a side feature of either sign. Gaussian noise on both."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(CLASSES), counts)
    t = np.arange(LENGTH) / LENGTH
    cycles = np.where(labels == 2, 6.0, 2.0)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (labels.size, 1))
    windows = np.sin(2 * np.pi * cycles * t + phase) + 0.3 * rng.standard_normal(
        (labels.size, LENGTH)
    )
    side = np.select([labels == 0, labels == 1], [-1.0, 1.0], rng.choice([-1.0, 1.0], labels.size))
    side = side + 0.2 * rng.standard_normal(labels.size)
    return tensor_split(windows, labels, "cpu", features=side[:, None])


@pytest.fixture(scope="module")
def splits() -> dict[str, TensorSplit]:
    """Imbalanced training windows (48/24/12), balanced validation windows."""
    return {"train": synthetic_split((48, 24, 12), seed=0), "val": synthetic_split((12,) * 3, 1)}


def new_model(seed: int = 0) -> Classifier:
    seed_everything(seed)
    return build_model(MODEL, LENGTH)


@pytest.fixture(scope="module")
def trained(splits: dict[str, TensorSplit]) -> tuple[Classifier, FitResult, dict[str, float]]:
    """The model before training's validation metrics, then the trained model and its run."""
    model = new_model()
    untrained = score_model(model, splits["val"])
    config = CONFIG.replace(weighted_sampling=True)
    return model, train_model(model, splits["train"], splits["val"], config), untrained


def test_the_loss_falls_and_the_classes_are_learned(trained: tuple) -> None:
    _, result, untrained = trained
    history = result.history
    assert history[-1].train["loss"] < history[0].train["loss"]
    assert result.best_val_loss < untrained["loss"] < 1.5 * math.log(CLASSES)
    # a separable problem: far above chance (1/3), and class 1 needs the side feature
    assert result.best.val["balanced_accuracy"] > 0.9 > untrained["balanced_accuracy"]
    assert result.best.val["recall_0"] > 0.8 and result.best.val["recall_1"] > 0.8


def test_reported_metrics_match_scikit_learn_on_the_predictions(
    trained: tuple, splits: dict[str, TensorSplit]
) -> None:
    model, result, _ = trained
    val = splits["val"]
    probs = predict_proba(model, val.x, val.features, batch_size=5)
    assert probs.shape == (len(val), CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    y_true, y_pred = val.y.numpy(), probs.argmax(axis=1)
    got = score_model(model, val)
    assert got == result.best.val  # the best epoch's weights are the ones restored
    labels = list(range(CLASSES))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    assert [[got[f"confusion_{i}_{j}"] for j in labels] for i in labels] == matrix.tolist()
    recall = skm.recall_score(y_true, y_pred, labels=labels, average=None)
    precision = skm.precision_score(
        y_true, y_pred, labels=labels, average=None, zero_division=np.nan
    )
    np.testing.assert_allclose([got[f"recall_{k}"] for k in labels], recall)
    np.testing.assert_allclose([got[f"precision_{k}"] for k in labels], precision)
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    expected_loss = torch.nn.functional.nll_loss(torch.log(torch.from_numpy(probs)), val.y)
    assert got["loss"] == pytest.approx(expected_loss.item(), rel=1e-4)


def test_a_hand_checked_confusion_matrix_through_the_engine() -> None:
    """Weights set by hand so that a window's logits are 10 x the one-hot side features: the
    prediction is the class they name, so the engine's metrics must give this matrix.

    truth:     0 0 0 0 1 1 1 2 2 2
    predicted: 0 0 0 1 1 1 2 2 2 1   true 0: [3 1 0]  true 1: [0 2 1]  true 2: [0 1 2]"""
    config = ModelConfig(
        num_blocks=1, block_channels=1, hidden_units=CLASSES, num_outputs=CLASSES, extra_features=3
    )
    model = build_model(config, LENGTH)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.head.hidden.weight[:, model.encoder.output_features :] = 10 * torch.eye(CLASSES)
        model.head.output.weight.copy_(torch.eye(CLASSES))
    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 1])
    side = torch.eye(CLASSES)[predicted]
    got = score_model(model, TensorSplit(torch.randn(10, 1, LENGTH), truth, side))
    labels = range(CLASSES)
    matrix = [[got[f"confusion_{i}_{j}"] for j in labels] for i in labels]
    assert matrix == [[3, 1, 0], [0, 2, 1], [0, 1, 2]]
    assert [got[f"recall_{k}"] for k in labels] == pytest.approx([3 / 4, 2 / 3, 2 / 3])
    assert [got[f"precision_{k}"] for k in labels] == pytest.approx([3 / 3, 2 / 4, 2 / 3])
    assert got["accuracy"] == pytest.approx(7 / 10)
    assert got["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)
    assert got["macro_f1"] == pytest.approx((6 / 7 + 4 / 7 + 2 / 3) / 3)
    # cross-entropy: -log softmax = log(1 + 2 e^-10) when right (7), log(e^10 + 2) when wrong (3)
    expected = (7 * math.log(1 + 2 * math.exp(-10)) + 3 * math.log(math.exp(10) + 2)) / 10
    assert got["loss"] == pytest.approx(expected, rel=1e-5)


def test_fine_tuning_the_head_on_cached_features_equals_the_frozen_network(
    trained: tuple, splits: dict[str, TensorSplit]
) -> None:
    """`finetune_head` (encoder features computed once, side features carried beside them)
    trains the head exactly as the whole network with a frozen encoder would."""
    pretrained, _, _ = trained
    config = CONFIG.replace(epochs=3, weighted_sampling=True)
    frozen, cached = copy.deepcopy(pretrained), copy.deepcopy(pretrained)
    freeze_encoder(frozen)
    full = train_model(frozen, splits["train"], splits["val"], config, progress=False)
    head_only = config.replace(encoder_lr_scale=0.0)  # fit's way to `finetune_head`
    fast = train_model(cached, splits["train"], splits["val"], head_only, progress=False)
    for a, b in zip(fast.history, full.history, strict=True):
        assert a.train == pytest.approx(b.train, rel=1e-5, abs=1e-6)
        assert a.val == pytest.approx(b.val, rel=1e-5, abs=1e-6)
    for name, tensor in frozen.state_dict().items():
        torch.testing.assert_close(cached.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
    for name, tensor in pretrained.encoder.state_dict().items():
        assert torch.equal(cached.encoder.state_dict()[name], tensor), name
