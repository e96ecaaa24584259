"""The torch side of the data layer: split tensors on a device, each epoch's sampling order.

No DataLoader: a whole split lives in one tensor, an epoch draws one index tensor (a permutation,
or class-balanced draws with replacement), gathers the epoch's windows once, and slices batches
out of them as views.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ecg_platform.data.dataset import PatientArrays, SplitArrays, pooled_splits


@dataclass(frozen=True)
class TensorSplit:
    """Windows (n, 1, L) float32 (or encoder features (n, F)); labels (n,) int64 class indices
    (binary: 1 = abnormal); optional per-window side features (n, E) float32 (e.g. RR
    intervals), which the model's head reads beside the windows."""

    x: Tensor
    y: Tensor
    features: Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.x.device

    def to(self, device: torch.device | str) -> TensorSplit:
        """The split on `device`."""
        features = None if self.features is None else self.features.to(device)
        return TensorSplit(self.x.to(device), self.y.to(device), features)

    def take(self, rows: slice | Tensor) -> TensorSplit:
        """The windows, labels and side features at `rows` (a slice: views; indices: a copy)."""
        features = None if self.features is None else self.features[rows]
        return TensorSplit(self.x[rows], self.y[rows], features)


def tensor_split(
    x: np.ndarray,
    y: np.ndarray,
    device: torch.device | str,
    features: np.ndarray | None = None,
) -> TensorSplit:
    """(n, L) windows, (n,) class labels and optional (n, E) side features as a TensorSplit of
    (n, 1, L) float32, (n,) int64 and (n, E) float32 on `device`."""
    windows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    side = None if features is None else torch.from_numpy(np.asarray(features, np.float32))
    return TensorSplit(windows, labels, side).to(device)


def tensor_splits(
    arrays: Mapping[str, SplitArrays], device: torch.device | str
) -> dict[str, TensorSplit]:
    """Every split's arrays as tensors on `device`."""
    return {
        name: tensor_split(split.x, split.y, device, split.features)
        for name, split in arrays.items()
    }


def patient_splits(
    patients: Sequence[PatientArrays], device: torch.device | str
) -> dict[str, TensorSplit]:
    """Each split ("train", "val", "test") of the given patients, pooled in the given order."""
    return tensor_splits(pooled_splits(patients), device)


class EpochSampler:
    """Each epoch's order of training windows: a permutation, or (`weighted`) as many draws with
    replacement as there are windows, every class present drawn equally often in expectation
    (each window weighs 1 / its class's count; any number of classes).

    Draws use `generator` (CPU) only, so a seeded generator makes the sequence repeatable."""

    def __init__(self, labels: Tensor, weighted: bool, generator: torch.Generator) -> None:
        self.size = int(labels.shape[0])
        self.device = labels.device
        self.generator = generator
        self.weights: Tensor | None = None
        if weighted:
            classes = labels.detach().to("cpu", torch.long)
            counts = torch.bincount(classes).double()
            self.weights = (1.0 / counts)[classes]

    def indices(self) -> Tensor:
        """The next epoch's window indices, (n,) int64 on the labels' device."""
        if self.weights is None:
            order = torch.randperm(self.size, generator=self.generator)
        else:
            order = torch.multinomial(
                self.weights, self.size, replacement=True, generator=self.generator
            )
        return order.to(self.device)


def batches(split: TensorSplit, batch_size: int) -> Iterator[TensorSplit]:
    """Consecutive batches of `split` as views (the last one may be smaller)."""
    for start in range(0, len(split), batch_size):
        yield split.take(slice(start, start + batch_size))


def gather(split: TensorSplit, indices: Tensor) -> TensorSplit:
    """The windows, labels and side features at `indices`, in that order (one copy each)."""
    return split.take(indices)
