"""Colour as classification over a grid of ab bins (Zhang et al., ECCV 2016, simplified).

A regression head trained on L1/L2 predicts the average of the plausible colours, and the
average of red and green is brown. A bins head predicts a distribution over a regular ab grid
instead; the target is the true ab spread bilinearly over its four nearest bin centres, the
cross-entropy is reweighted towards rare (saturated) colours with a prior measured on the
training data, and the distribution is turned back into ab by its annealed mean (temperature
below 1 sharpens it towards the mode: more vivid; 1 is the plain mean: safer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AB_LIMIT = 110.0


class AbBins(nn.Module):
    def __init__(self, bin_size: float = 10.0, temperature: float = 0.38, rebalance_mix: float = 0.5):
        super().__init__()
        if not 0.0 < temperature:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.per_axis = int(round(2 * AB_LIMIT / bin_size)) + 1
        self.bin_size = 2 * AB_LIMIT / (self.per_axis - 1)
        self.temperature = temperature
        self.rebalance_mix = rebalance_mix
        axis = torch.linspace(-AB_LIMIT, AB_LIMIT, self.per_axis)
        a, b = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("centers", torch.stack([a.flatten(), b.flatten()], dim=1))  # (Q, 2), a-major
        self.register_buffer("class_weights", torch.ones(self.count))

    @property
    def count(self) -> int:
        return self.per_axis**2

    def decode(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Annealed mean: (B, Q, H, W) logits -> (B, 2, H, W) ab in Lab units, in float32."""
        probs = torch.softmax(logits.float() / (temperature or self.temperature), dim=1)
        return torch.einsum("bqhw,qc->bchw", probs, self.centers)

    def soft_targets(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bilinear encoding of (B, 2, H, W) ab: four bin indices and their weights, each (B, 4, H, W)."""
        pos = (ab.float().clamp(-AB_LIMIT, AB_LIMIT) + AB_LIMIT) / self.bin_size
        low = pos.floor().clamp(max=self.per_axis - 2)
        frac = pos - low
        low = low.long()
        ia, ib = low[:, 0], low[:, 1]
        fa, fb = frac[:, 0], frac[:, 1]
        n = self.per_axis
        index = torch.stack([ia * n + ib, ia * n + ib + 1, (ia + 1) * n + ib, (ia + 1) * n + ib + 1], dim=1)
        weight = torch.stack([(1 - fa) * (1 - fb), (1 - fa) * fb, fa * (1 - fb), fa * fb], dim=1)
        return index, weight

    def cross_entropy(self, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Class-rebalanced cross-entropy of logits against the true ab (resized to the logits' grid)."""
        if ab.shape[-2:] != logits.shape[-2:]:
            ab = F.adaptive_avg_pool2d(ab.float(), logits.shape[-2:])
        index, weight = self.soft_targets(ab)
        log_probs = torch.log_softmax(logits.float(), dim=1).gather(1, index)
        pixel_weight = (self.class_weights[index] * weight).sum(1)
        return -(pixel_weight * (weight * log_probs).sum(1)).mean()

    @torch.no_grad()
    def fit_prior(self, ab: torch.Tensor) -> torch.Tensor:
        """Set the rebalancing weights from sample ab, (B, 2, H, W) (Zhang's formula, mean weight 1 under the
        prior), and return the prior: the share of the samples in each bin."""
        index, weight = self.soft_targets(ab)
        counts = torch.zeros(self.count, dtype=torch.float64).index_add_(0, index.flatten(), weight.flatten().double())
        prior = counts / counts.sum()
        smoothed = (1 - self.rebalance_mix) * prior + self.rebalance_mix / self.count
        weights = 1.0 / smoothed
        weights = weights / (prior * weights).sum()
        self.class_weights.copy_(weights.float())
        return prior.float()
