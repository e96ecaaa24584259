"""CNN1D and the model interface: architecture, parameter count, layout-free maths, K outputs,
side features, parameter groups, freezing, pretrained loading, the registry, export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ecg_platform.engine.runtime import small_batch_kernels
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import CNN1D, count_trainable_parameters, load_pretrained
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import freeze_encoder, has_encoder_head
from ecg_platform.models.registry import ARCHITECTURES, build_model

HEAD_PARAMETERS = 160 * 160 + 160 + 160 + 1


def reference_logits(
    model: CNN1D, x: torch.Tensor, features: torch.Tensor | None = None
) -> torch.Tensor:
    """docs/model.md's layer table written plainly with (n, C, L) Conv1d/MaxPool1d calls."""
    config = model.config
    h = F.relu(F.conv1d(x, model.encoder.stem.weight))
    for block in model.encoder.blocks:
        y = F.relu(F.conv1d(h, block.conv1.weight, block.conv1.bias))
        y = F.conv1d(y, block.conv2.weight, block.conv2.bias)
        missing = h.shape[-1] - y.shape[-1]
        y = F.pad(y, (missing // 2, missing - missing // 2), mode="replicate")
        h = F.max_pool1d(F.relu(h + y), config.pool_size, config.pool_stride)
    head_input = h.flatten(1) if features is None else torch.cat([h.flatten(1), features], 1)
    logits = model.head.output(model.head.hidden(head_input))
    return logits.squeeze(-1) if model.config.num_outputs == 1 else logits


def test_default_model_has_the_studys_parameter_count_and_lengths() -> None:
    model = CNN1D()
    assert count_trainable_parameters(model) == 67_169
    assert model.encoder.output_length == 5  # 128 -> 62 -> 29 -> 13 -> 5
    assert model.head.hidden.in_features == 160


@pytest.mark.parametrize(
    ("config", "length"),
    [(ModelConfig(), 128), (ModelConfig(num_blocks=2, block_channels=8, kernel_size=3), 90)],
)
def test_forward_matches_the_plain_formulation(config: ModelConfig, length: int) -> None:
    torch.manual_seed(0)
    model = CNN1D(config, input_length=length)
    x = torch.randn(6, 1, length)
    expected = reference_logits(model, x)
    torch.testing.assert_close(model.logits(x), expected, rtol=1e-5, atol=1e-5)
    probs = model(x)
    assert probs.shape == (6,)
    torch.testing.assert_close(probs, torch.sigmoid(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [4, 32])  # PyTorch's own convolutions, then oneDNN's
def test_gradients_match_the_plain_formulation(batch_size: int) -> None:
    torch.manual_seed(1)
    model = CNN1D()
    x = torch.randn(batch_size, 1, 128)
    with small_batch_kernels(batch_size):
        fast = torch.autograd.grad(model.logits(x).sum(), list(model.parameters()))
    plain = torch.autograd.grad(reference_logits(model, x).sum(), list(model.parameters()))
    for got, want in zip(fast, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_head_size_follows_the_architecture() -> None:
    model = CNN1D(ModelConfig(num_blocks=3, block_channels=16), input_length=128)
    assert model.head.hidden.in_features == 16 * 13


def test_too_short_input_is_refused_clearly() -> None:
    with pytest.raises(EcgPlatformError, match="input length 40 is too short for 4 blocks"):
        CNN1D(input_length=40)


def test_wrong_input_shape_is_refused_clearly() -> None:
    with pytest.raises(EcgPlatformError, match=r"expected windows of shape \(n, 1, 128\)"):
        CNN1D()(torch.zeros(2, 1, 100))


def test_freeze_encoder_leaves_only_the_head_trainable() -> None:
    model = CNN1D()
    freeze_encoder(model)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert count_trainable_parameters(model) == HEAD_PARAMETERS


def test_load_pretrained_copies_matching_weights() -> None:
    source, target = CNN1D(), CNN1D()
    load_pretrained(target, source.state_dict())
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor)


def test_load_pretrained_names_every_mismatch() -> None:
    other = CNN1D(ModelConfig(num_blocks=3, block_channels=16))
    with pytest.raises(EcgPlatformError) as caught:
        load_pretrained(CNN1D(), other.state_dict())
    message = str(caught.value)
    assert "missing encoder.blocks.3.conv1.weight" in message
    assert "encoder.stem.weight has shape (16, 1, 1) but the model needs (32, 1, 1)" in message
    assert "head.hidden.weight" in message


def test_k_outputs_give_k_logits_and_softmax_probabilities() -> None:
    torch.manual_seed(2)
    model = CNN1D(ModelConfig(num_outputs=5))
    x = torch.randn(6, 1, 128)
    expected = reference_logits(model, x)
    assert expected.shape == (6, 5)
    torch.testing.assert_close(model.logits(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x), torch.softmax(expected, 1), rtol=1e-5, atol=1e-6)
    assert count_trainable_parameters(model) == 67_169 + 4 * 161  # four more output units


def test_side_features_enter_the_head_beside_the_encoders() -> None:
    torch.manual_seed(3)
    model = CNN1D(ModelConfig(num_outputs=3, extra_features=2))
    x, rr = torch.randn(4, 1, 128), torch.randn(4, 2)
    assert model.head.hidden.in_features == 160 + 2
    torch.testing.assert_close(model.logits(x, rr), reference_logits(model, x, rr))
    assert not torch.allclose(model.logits(x, rr), model.logits(x, rr + 1))
    with pytest.raises(EcgPlatformError, match="takes 2 side features per window, got 0"):
        model(x)
    with pytest.raises(EcgPlatformError, match="takes 0 side features per window, got 2"):
        CNN1D()(x, rr)


def test_the_model_owns_its_parameter_groups() -> None:
    model = CNN1D()
    everything = model.parameter_groups(1e-3, 1.0)
    assert len(everything) == 1 and everything[0]["lr"] == 1e-3
    assert [id(p) for p in everything[0]["params"]] == [id(p) for p in model.parameters()]
    head_only = model.parameter_groups(1e-3, 0.0)  # a frozen encoder trains nothing
    assert [id(p) for p in head_only[0]["params"]] == [id(p) for p in model.head.parameters()]
    assert len(head_only) == 1
    freeze_encoder(model)
    assert model.parameter_groups(1e-3, 0.1) == [{"params": head_only[0]["params"], "lr": 1e-3}]
    assert has_encoder_head(model) and not has_encoder_head(model.head)


def test_the_registry_builds_the_named_architecture() -> None:
    assert set(ARCHITECTURES) == {"cnn1d"}
    torch.manual_seed(4)
    built = build_model(ModelConfig(num_outputs=3), input_length=128)
    torch.manual_seed(4)
    direct = CNN1D(ModelConfig(num_outputs=3), input_length=128)
    assert isinstance(built, CNN1D) and built.config.num_outputs == 3
    for name, tensor in direct.state_dict().items():
        assert torch.equal(built.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"architecture": "resnet9"}, "unknown architecture 'resnet9'; choose from: cnn1d"),
        ({"num_outputs": 0}, "num_outputs must be 1 .binary. or the number of classes, not 0"),
        ({"extra_features": -1}, "extra_features must be >= 0, not -1"),
    ],
)
def test_the_registry_refuses_impossible_configs(change: dict, says: str) -> None:
    with pytest.raises(EcgPlatformError, match=says):
        build_model(ModelConfig(**change), input_length=128)


def test_a_k_class_model_with_side_features_exports_like_mlflow_exports_it() -> None:
    """`tracking.models.log_model` saves `torch.export` of `model(inputs...)` with a dynamic
    batch (MLflow's pt2 format): the export must give the eager model's probabilities."""
    torch.manual_seed(5)
    model = CNN1D(ModelConfig(num_outputs=3, extra_features=2)).eval()
    x, rr = torch.randn(5, 1, 128), torch.randn(5, 2)
    batch = torch.export.Dim.AUTO
    exported = torch.export.export(model, (x, rr), dynamic_shapes=[{0: batch}, {0: batch}])
    x, rr = torch.randn(7, 1, 128), torch.randn(7, 2)  # another batch size
    probs = exported.module()(x, rr)
    assert probs.shape == (7, 3)
    torch.testing.assert_close(probs, model(x, rr))
    torch.testing.assert_close(probs.sum(1), torch.ones(7))
