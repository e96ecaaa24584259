"""CNN1D: architecture, parameter count, layout-free maths, freezing, pretrained loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ecg_platform.engine.runtime import small_batch_kernels
from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.cnn1d import (
    CNN1D,
    count_trainable_parameters,
    freeze_encoder,
    load_pretrained,
)
from ecg_platform.models.config import ModelConfig


def reference_logits(model: CNN1D, x: torch.Tensor) -> torch.Tensor:
    """docs/model.md's layer table written plainly with (n, C, L) Conv1d/MaxPool1d calls."""
    config = model.config
    h = F.relu(F.conv1d(x, model.encoder.stem.weight))
    for block in model.encoder.blocks:
        y = F.relu(F.conv1d(h, block.conv1.weight, block.conv1.bias))
        y = F.conv1d(y, block.conv2.weight, block.conv2.bias)
        missing = h.shape[-1] - y.shape[-1]
        y = F.pad(y, (missing // 2, missing - missing // 2), mode="replicate")
        h = F.max_pool1d(F.relu(h + y), config.pool_size, config.pool_stride)
    return model.head.output(model.head.hidden(h.flatten(1))).squeeze(-1)


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
    assert count_trainable_parameters(model) == 160 * 160 + 160 + 160 + 1


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
