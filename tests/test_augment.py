"""Training-time augmentation: each window's gain, offset and noise within the strength's bounds,
drawn from the given generator."""

from __future__ import annotations

import pytest
import torch

from ecg_platform.engine.augment import NOISE_PER_STRENGTH, OFFSET_PER_STRENGTH, augment_windows

LENGTH = 4000  # long windows: a window's mean is its gain plus offset within 0.01


@pytest.mark.parametrize("strength", [0.1, 0.3])
def test_gain_offset_and_noise_stay_within_the_strength(strength: float) -> None:
    ones = torch.ones(500, 1, LENGTH)
    out = augment_windows(ones, strength, torch.Generator().manual_seed(0))
    assert out.shape == ones.shape and torch.equal(ones, torch.ones_like(ones))  # input kept
    level = out.mean(dim=2).squeeze(1)  # gain + offset per window
    reach = strength * (1 + OFFSET_PER_STRENGTH) + 0.01
    assert (level - 1).abs().max() <= reach
    assert (level - 1).abs().max() > 0.8 * strength  # the whole range is used
    noise = (out - out.mean(dim=2, keepdim=True)).std()
    assert noise == pytest.approx(strength * NOISE_PER_STRENGTH, rel=0.02)


def test_the_generator_decides_every_draw() -> None:
    x = torch.randn(64, 1, 243)
    first = augment_windows(x, 0.3, torch.Generator().manual_seed(5))
    again = augment_windows(x, 0.3, torch.Generator().manual_seed(5))
    other = augment_windows(x, 0.3, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)
