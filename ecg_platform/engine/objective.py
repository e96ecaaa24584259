"""The loss of a model's output size, and an epoch's metrics from the function the caller chose.

One logit per window (n,) is binary: binary cross-entropy on the logits, labels 0/1. K logits
(n, K) are K classes: softmax cross-entropy, labels 0..K-1. The engine computes no metric
itself: the caller passes a `MetricsFn` (e.g. `evaluation.metrics.classification_metrics`),
which keeps the engine upstream of evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from ecg_platform.models.protocol import probabilities

# metrics(labels (n,), probabilities (n,) or (n, K), threshold, loss) -> {"loss": ..., name: value}
MetricsFn = Callable[[np.ndarray, np.ndarray, float, float], dict[str, float]]


def loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean binary cross-entropy of (n,) logits, or cross-entropy of (n, K) logits."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def score(logits: Tensor, labels: Tensor, threshold: float, metrics: MetricsFn) -> dict[str, float]:
    """The loss and `metrics` of a split's logits; only the loss when it is not finite."""
    value = loss(logits, labels).item()
    if not math.isfinite(value):
        return {"loss": value}
    return metrics(labels.cpu().numpy(), probabilities(logits).cpu().numpy(), threshold, value)
