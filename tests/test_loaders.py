"""Split tensors from real patients, the class-balancing sampler, batch views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_platform.data.dataset import SPLITS, StudyData
from ecg_platform.data.loaders import (
    EpochSampler,
    TensorSplit,
    batches,
    gather,
    patient_splits,
    tensor_split,
)
from ecg_platform.errors import EcgPlatformError


def test_patient_splits_pool_each_split_in_patient_order(excerpt_study: StudyData) -> None:
    patients = [excerpt_study.patients[r] for r in excerpt_study.selected]
    splits = patient_splits(patients, "cpu")
    assert tuple(splits) == SPLITS
    for name, split in splits.items():
        x = np.concatenate([p.part(name)[0] for p in patients])
        y = np.concatenate([p.part(name)[1] for p in patients])
        assert split.x.shape == (len(y), 1, x.shape[1]) and split.x.dtype == torch.float32
        assert split.y.dtype == torch.int64 and len(split) == len(y)
        assert split.features is None
        np.testing.assert_array_equal(split.x[:, 0].numpy(), x)
        np.testing.assert_array_equal(split.y.numpy(), y)
    assert sum(len(s) for s in splits.values()) == sum(p.n_windows for p in patients)


def test_no_patients_is_a_clear_error() -> None:
    with pytest.raises(EcgPlatformError, match="no patients"):
        patient_splits([], "cpu")


def labels(n_normal: int, n_abnormal: int) -> torch.Tensor:
    return torch.cat([torch.zeros(n_normal), torch.ones(n_abnormal)])


def test_weighted_sampling_draws_both_classes_equally_often() -> None:
    y = labels(950, 50)
    sampler = EpochSampler(y, weighted=True, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([y[sampler.indices()] for _ in range(20)])
    assert len(drawn) == 20 * len(y)
    assert drawn.mean().item() == pytest.approx(0.5, abs=0.02)


def test_weighted_sampling_draws_every_class_equally_often() -> None:
    counts = (700, 200, 90, 10)  # class 4 absent: never drawn
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    sampler = EpochSampler(y, weighted=True, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([y[sampler.indices()] for _ in range(20)])
    shares = torch.bincount(drawn, minlength=5) / len(drawn)
    assert shares.tolist() == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.0], abs=0.02)


def test_unweighted_sampling_is_a_permutation() -> None:
    y = labels(95, 5)
    indices = EpochSampler(y, weighted=False, generator=torch.Generator().manual_seed(0)).indices()
    assert sorted(indices.tolist()) == list(range(100))


@pytest.mark.parametrize("weighted", [True, False])
def test_sampling_follows_the_seed(weighted: bool) -> None:
    y = labels(90, 10)

    def epochs(seed: int) -> list[list[int]]:
        sampler = EpochSampler(y, weighted, torch.Generator().manual_seed(seed))
        return [sampler.indices().tolist() for _ in range(3)]

    assert epochs(1) == epochs(1)
    assert epochs(1) != epochs(2)
    assert epochs(1)[0] != epochs(1)[1]  # every epoch draws anew


def numbered_split(n: int) -> TensorSplit:
    """Window i holds i, label i, side features (i, -i): every row says where it came from."""
    rows = torch.arange(n)
    return TensorSplit(rows.float().view(n, 1, 1), rows, torch.stack([rows, -rows], 1).float())


def test_batches_are_views_in_order_with_a_short_last_batch() -> None:
    split = numbered_split(10)
    parts = list(batches(split, 4))
    assert [len(b) for b in parts] == [4, 4, 2]
    assert torch.equal(torch.cat([b.y for b in parts]), split.y)
    assert torch.equal(torch.cat([b.features for b in parts]), split.features)
    for tensor, part in ((split.x, parts[1].x), (split.features, parts[1].features)):
        assert part.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
    assert all(b.features is None for b in batches(TensorSplit(split.x, split.y), 4))


def test_gather_reorders_windows_labels_and_features_together() -> None:
    picked = gather(numbered_split(5), torch.tensor([4, 0, 4]))
    assert picked.x.flatten().tolist() == [4.0, 0.0, 4.0]
    assert picked.y.tolist() == [4, 0, 4]
    assert picked.features.tolist() == [[4.0, -4.0], [0.0, 0.0], [4.0, -4.0]]


def test_tensor_split_carries_side_features() -> None:
    x, y = np.zeros((3, 8)), np.array([2, 0, 1])
    rr = np.arange(6, dtype=np.float64).reshape(3, 2)
    split = tensor_split(x, y, "cpu", features=rr)
    assert split.x.shape == (3, 1, 8) and split.y.dtype == torch.int64
    assert split.features.dtype == torch.float32 and split.features.tolist() == rr.tolist()
