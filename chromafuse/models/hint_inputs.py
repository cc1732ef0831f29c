"""The guided model's extra inputs: local hint maps and a global hint, turned into additive terms for
the decoder's features at each stride and for the colour queries.

Every output layer starts at zero, so a guided model made from an automatic one's weights colorizes
exactly as before until training teaches it to use the hints (Zhang et al. 2017 add their hint inputs
the same way).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..guidance.hints import HINT_CHANNELS
from ..guidance.reference import REFERENCE_DIM

PYRAMID_CHANNELS = 4  # per cell: mean hint a and b, whether any hint lies in it, and how much of it is hinted


def hint_pyramid(hints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, S, S) hint map -> (B, 4, h, w) at a coarser size: the hints' mean ab in each cell, a flag, the coverage."""
    if hints.shape[-2:] != torch.Size(size):
        pooled = F.adaptive_avg_pool2d(hints, size)
    else:
        pooled = hints
    coverage = pooled[:, 2:3]
    mean_ab = pooled[:, :2] / coverage.clamp_min(1e-6)
    return torch.cat([mean_ab, (coverage > 0).to(pooled.dtype), coverage], dim=1)


def _zero(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class HintInputs(nn.Module):
    def __init__(self, feature_channels: tuple[int, ...], query_dim: int, hidden: int = 128):
        super().__init__()
        self.local = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(PYRAMID_CHANNELS, hidden // 2, 3, padding=1),
                nn.ReLU(inplace=True),
                _zero(nn.Conv2d(hidden // 2, c, 3, padding=1)),
            )
            for c in feature_channels
        )
        self.global_mlp = nn.Sequential(nn.Linear(REFERENCE_DIM, hidden), nn.GELU())
        self.to_queries = _zero(nn.Linear(hidden, query_dim))
        self.to_features = _zero(nn.Linear(hidden, feature_channels[0]))

    def local_term(self, level: int, hints: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """The additive term for the feature map of ``level`` (0: stride 32 ... 3: stride 4, 4: the refinement)."""
        return self.local[level](hint_pyramid(hints, feature.shape[-2:]).to(feature.dtype))

    def global_terms(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, REFERENCE_DIM) -> a term for the colour queries (B, 1, query_dim) and for the coarsest features (B, C, 1, 1)."""
        hidden = self.global_mlp(reference)
        return self.to_queries(hidden)[:, None, :], self.to_features(hidden)[:, :, None, None]


def check_guidance(hints: torch.Tensor | None, reference: torch.Tensor | None, lightness: torch.Tensor) -> None:
    batch, _, height, width = lightness.shape
    if hints is not None and tuple(hints.shape) != (batch, HINT_CHANNELS, height, width):
        raise ValueError(f"hint maps must be {(batch, HINT_CHANNELS, height, width)}, got {tuple(hints.shape)}")
    if reference is not None and tuple(reference.shape) != (batch, REFERENCE_DIM):
        raise ValueError(f"global hints must be {(batch, REFERENCE_DIM)}, got {tuple(reference.shape)}")
