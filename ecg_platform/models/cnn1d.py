"""The study's residual 1D CNN (docs/model.md): encoder, head, pretrained loading.

A `models.protocol.EncoderHead`: `CNN1D.logits` gives (n,) logits of "abnormal" with one output,
(n, K) with `num_outputs` K; `forward` the matching probabilities (sigmoid or softmax). Side
features (`extra_features`, e.g. RR intervals) enter the head beside the encoder's features.
Inside the encoder, activations are kept as (n, C, 1, L) tensors in channels-last memory order:
on that layout oneDNN's max-pooling is about 10x, and a whole training step about 1.4x, faster
than on (n, C, L) tensors (measured on the CPU).
The parameters are ordinary `Conv1d`/`Linear` ones, so the state dict is layout-free.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecg_platform.errors import EcgPlatformError
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import ParamGroup, encoder_head_groups, probabilities

DEFAULT_CONFIG = ModelConfig()


def _conv(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """A valid (unpadded) `conv` applied to channels-last (n, C, 1, L) activations."""
    return F.conv2d(x, conv.weight.unsqueeze(2), conv.bias)


class ResidualBlock(nn.Module):
    """conv, ReLU, conv; replicate-pad back to the input length; add the input; ReLU; max-pool."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        channels, kernel = config.block_channels, config.kernel_size
        self.conv1 = nn.Conv1d(channels, channels, kernel)
        self.conv2 = nn.Conv1d(channels, channels, kernel)
        shrink = 2 * (kernel - 1)
        self.padding = (shrink // 2, shrink - shrink // 2, 0, 0)  # half left, the odd one right
        self.pool = ((1, config.pool_size), (1, config.pool_stride))

    def forward(self, x: Tensor) -> Tensor:
        """(n, C, 1, L) -> (n, C, 1, L') channels-last, L' the pooled length."""
        y = _conv(F.relu(_conv(x, self.conv1), inplace=True), self.conv2)
        y = F.pad(y, self.padding, mode="replicate")
        return F.max_pool2d(F.relu(x + y, inplace=True), *self.pool)


def block_output_length(length: int, config: ModelConfig) -> int:
    """Length after one residual block (the pooled length); < 1 when the input is too short."""
    if length - 2 * (config.kernel_size - 1) < 1 or length < config.pool_size:
        return 0
    return (length - config.pool_size) // config.pool_stride + 1


class Encoder(nn.Module):
    """Kernel-1 stem convolution (no bias) and ReLU, then the residual blocks, flattened."""

    def __init__(self, config: ModelConfig, input_length: int) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, config.block_channels, 1, bias=False)
        self.blocks = nn.ModuleList(ResidualBlock(config) for _ in range(config.num_blocks))
        self.input_length = input_length
        self.output_length = input_length
        for index in range(config.num_blocks):
            next_length = block_output_length(self.output_length, config)
            if next_length < 1:
                raise EcgPlatformError(
                    f"input length {input_length} is too short for {config.num_blocks} blocks "
                    f"(kernel {config.kernel_size}, pool {config.pool_size}/{config.pool_stride}):"
                    f" block {index + 1} would get {self.output_length} samples; use fewer "
                    "blocks, a smaller kernel or longer windows"
                )
            self.output_length = next_length
        self.output_features = config.block_channels * self.output_length

    def forward(self, x: Tensor) -> Tensor:
        """(n, 1, L) windows -> (n, C * L_out) features, flattened channel by channel."""
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.input_length:
            raise EcgPlatformError(
                f"expected windows of shape (n, 1, {self.input_length}), got {tuple(x.shape)}"
            )
        # The kernel-1 stem conv is a broadcast multiply; its (n, L, C) result, viewed as
        # (n, C, 1, L), is already in channels-last order.
        stem = self.stem.weight.view(1, 1, -1)
        h = F.relu(x.reshape(x.shape[0], -1, 1) * stem, inplace=True).permute(0, 2, 1).unsqueeze(2)
        for block in self.blocks:
            h = block(h)
        return h.flatten(1)


class ClassifierHead(nn.Module):
    """Linear(F + E, H), Linear(H, K): logits from encoder features (F) and side features (E).

    No activation between the two layers, as in the study. One output gives (n,) logits."""

    def __init__(
        self, in_features: int, hidden_units: int, num_outputs: int = 1, extra_features: int = 0
    ) -> None:
        super().__init__()
        self.extra_features = extra_features
        self.hidden = nn.Linear(in_features + extra_features, hidden_units)
        self.output = nn.Linear(hidden_units, num_outputs)

    def logits(self, encoded: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, F) encoder features and (n, E) side features -> (n,) or (n, K) logits."""
        given = 0 if features is None else features.shape[-1]
        if given != self.extra_features:
            raise EcgPlatformError(
                f"the head takes {self.extra_features} side features per window, got {given}: "
                "set the model's extra_features to the number of side features the data has"
            )
        if features is not None:
            encoded = torch.cat([encoded, features], dim=1)
        logits = self.output(self.hidden(encoded))
        return logits.squeeze(-1) if self.output.out_features == 1 else logits

    def forward(self, encoded: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, F) encoder features (and side features) -> (n,) or (n, K) probabilities."""
        return probabilities(self.logits(encoded, features))


class CNN1D(nn.Module):
    """The study's CNN: `encoder` (stem + residual blocks) and `head` (two linear layers)."""

    def __init__(self, config: ModelConfig = DEFAULT_CONFIG, input_length: int = 128) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, input_length)
        self.head = ClassifierHead(
            self.encoder.output_features,
            config.hidden_units,
            config.num_outputs,
            config.extra_features,
        )

    def logits(self, x: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, 1, L) windows (and (n, E) side features) -> (n,) or (n, K) logits."""
        return self.head.logits(self.encoder(x), features)

    def forward(self, x: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, 1, L) windows -> (n,) probability of class 1, or (n, K) class probabilities."""
        return probabilities(self.logits(x, features))

    def parameter_groups(self, lr: float, encoder_lr_scale: float) -> list[ParamGroup]:
        """Encoder at lr x `encoder_lr_scale` (0: frozen, not trained), the head at lr."""
        return encoder_head_groups(self, lr, encoder_lr_scale)


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of parameter elements that require gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_pretrained(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Copy pretrained weights into `model`, or say exactly which tensors do not fit."""
    own = model.state_dict()
    problems = [f"missing {name}" for name in own if name not in state_dict]
    problems += [f"unexpected {name}" for name in state_dict if name not in own]
    problems += [
        f"{name} has shape {tuple(state_dict[name].shape)} but the model needs "
        f"{tuple(tensor.shape)}"
        for name, tensor in own.items()
        if name in state_dict and state_dict[name].shape != tensor.shape
    ]
    if problems:
        raise EcgPlatformError(
            "pretrained weights do not fit this model (check --num-blocks, --block-channels, "
            f"--kernel-size and the window length): {'; '.join(problems)}"
        )
    model.load_state_dict(state_dict)
