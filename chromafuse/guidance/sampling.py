"""Hints sampled from the true colours of a training batch, as Zhang et al. (SIGGRAPH 2017) train:
per image, no local hints with probability ``p_no_points``, else a geometric number of points (p = 1/8),
placed around the centre (normal, sd = size / 4), each a square patch of 1-``max_patch`` pixels given the
patch's true mean ab; the global hint (the image's own colour distribution) is dropped with ``p_no_reference``.
With both dropped the model learns to colorize alone, so one network serves both ways."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..color.lab import AB_SCALE
from .hints import HINT_CHANNELS
from .reference import reference_vectors


@dataclass(frozen=True)
class HintSampling:
    p_no_points: float = 0.5
    p_point: float = 1 / 8  # geometric: P(n) = (1 - p)^(n - 1) p for n >= 1
    max_points: int = 40
    max_patch: int = 5  # at the 128-pixel training size: about 1-9 pixels at the render size of 256
    p_no_reference: float = 0.5


def sample_hints(
    ab: torch.Tensor, generator: torch.Generator, sampling: HintSampling = HintSampling()
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, S, S) true ab (Lab units) -> local hint maps (B, 3, S, S) and global hints (B, REFERENCE_DIM)."""
    batch, _, height, width = ab.shape
    hints = torch.zeros(batch, HINT_CHANNELS, height, width, device=ab.device)
    uniform = torch.rand(batch, 2, generator=generator)
    for index in range(batch):
        if uniform[index, 0] < sampling.p_no_points:
            continue
        count = 1
        while count < sampling.max_points and torch.rand(1, generator=generator).item() > sampling.p_point:
            count += 1
        centres = torch.randn(count, 2, generator=generator) * torch.tensor([height / 4, width / 4])
        centres += torch.tensor([height / 2, width / 2])
        patches = torch.randint(1, sampling.max_patch + 1, (count,), generator=generator)
        for (cy, cx), patch in zip(centres.tolist(), patches.tolist()):
            top = min(max(int(cy) - patch // 2, 0), height - patch)
            left = min(max(int(cx) - patch // 2, 0), width - patch)
            region = (slice(top, top + patch), slice(left, left + patch))
            mean = ab[index, :, region[0], region[1]].float().mean(dim=(1, 2)) / AB_SCALE
            hints[index, :2, region[0], region[1]] = mean[:, None, None]
            hints[index, 2, region[0], region[1]] = 1.0
    reference = reference_vectors(ab)
    reference[(uniform[:, 1] < sampling.p_no_reference).to(ab.device)] = 0.0
    return hints, reference
