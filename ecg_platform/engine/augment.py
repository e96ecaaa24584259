"""Training-time augmentation of windows: what differs between patients' beats of one class.

A network pretrained on some patients and applied to others meets other amplitudes, baselines and
noise than it learned; on the inter-patient protocol it learned the training patients' morphology
so closely that it ignored the RR features that transfer (docs/results.md section 6). One
`strength` s draws, per window and epoch, a gain from U(1 - s, 1 + s), a baseline offset from
U(-s/3, s/3) and white noise of standard deviation s/10 (the windows are scaled to about unit
range by the data layer), from the training run's own seeded generator.
"""

from __future__ import annotations

import torch
from torch import Tensor

OFFSET_PER_STRENGTH = 1 / 3
NOISE_PER_STRENGTH = 1 / 10


def augment_windows(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """(n, 1, L) windows, each with its own random gain, offset and noise; `x` itself is kept."""
    n = x.shape[0]
    shape = (n, *(1 for _ in x.shape[1:]))
    uniform = torch.rand((2, *shape), generator=generator).to(x.device) * 2 - 1
    gain = 1 + strength * uniform[0]
    offset = strength * OFFSET_PER_STRENGTH * uniform[1]
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return x * gain + offset + strength * NOISE_PER_STRENGTH * noise
