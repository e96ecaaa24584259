"""What the engine may rely on in a model, and the shared parts that implement it.

A classifier is an `nn.Module` with `logits(x, features=None)`: (n,) logits for one output
(binary, sigmoid) or (n, K) for K outputs (softmax); `features` are optional per-window side
features (n, E). Its `forward` returns the matching probabilities, so that `torch.export` of
`model(x)` gives a servable model. It owns its optimiser groups (as nanoGPT's model does), so
the engine never asks which parameters are whose. A model may also split into an `encoder`
and a `head`: then the engine can fine-tune the head alone on encoder features computed once.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard

import torch
from torch import Tensor, nn

from ecg_platform.models.config import ModelConfig

ParamGroup = dict[str, Any]  # a torch.optim parameter group: {"params": [...], "lr": ...}


class Classifier(Protocol):
    """A trainable classifier (an `nn.Module`; the engine also uses its Module methods)."""

    config: ModelConfig

    def logits(self, x: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, ...) inputs and optional (n, E) side features -> (n,) or (n, K) logits."""
        ...

    def parameter_groups(self, lr: float, encoder_lr_scale: float) -> list[ParamGroup]:
        """The parameters to train, in optimiser groups; `encoder_lr_scale` 0: the encoder
        is frozen and only the rest trains."""
        ...


class Head(Protocol):
    """The part after the encoder (an `nn.Module`): logits from encoder features."""

    def logits(self, encoded: Tensor, features: Tensor | None = None) -> Tensor:
        """(n, F) encoder features and optional (n, E) side features -> logits."""
        ...


class EncoderHead(Classifier, Protocol):
    """A classifier that is `head(encoder(x), features)`."""

    encoder: nn.Module
    head: Head


def has_encoder_head(model: Classifier) -> TypeGuard[EncoderHead]:
    """Whether `model` splits into an encoder and a head. (Not `isinstance` on the protocol:
    from Python 3.12 it looks attributes up statically and misses a Module's submodules.)"""
    parts = (getattr(model, name, None) for name in ("encoder", "head"))
    return all(isinstance(part, nn.Module) for part in parts)


def probabilities(logits: Tensor) -> Tensor:
    """Sigmoid of (n,) logits (probability of class 1), softmax over the classes of (n, K)."""
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, dim=1)


def freeze_encoder(model: EncoderHead) -> None:
    """Stop gradients to the encoder; only the head stays trainable (fine-tuning)."""
    model.encoder.requires_grad_(False)


def encoder_head_groups(model: EncoderHead, lr: float, encoder_lr_scale: float) -> list[ParamGroup]:
    """`Classifier.parameter_groups` of an encoder/head model: the trainable parameters in one
    group at `lr` when the scale is 1; otherwise those outside the encoder at `lr`, then the
    encoder's at lr x scale (none at scale 0: a frozen encoder). Empty groups are left out."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if encoder_lr_scale == 1:
        return [{"params": trainable, "lr": lr}] if trainable else []
    in_encoder = {id(p) for p in model.encoder.parameters()}
    groups = [([p for p in trainable if id(p) not in in_encoder], lr)]
    if encoder_lr_scale != 0:
        groups.append(([p for p in trainable if id(p) in in_encoder], lr * encoder_lr_scale))
    return [{"params": params, "lr": group_lr} for params, group_lr in groups if params]
