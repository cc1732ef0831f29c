"""The perceptual loss: how far the colorized photo's ImageNet features are from the true photo's.

Features come from a frozen EfficientNet-Lite0 with its ImageNet weights (already a dependency, no
download) at strides 4, 8 and 16, the levels where colour-dependent texture and object evidence sit;
the deeper stages are never run. Each level's L1 distance is divided by the mean magnitude of the true
features at that level, so every level weighs about the same whatever its scale.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.efficientnet import EfficientNetLite0Encoder, rgb_to_backbone_input

FEATURE_LEVELS = (2, 4, 10)  # blocks after which features are compared: strides 4, 8, 16


class PerceptualLoss(nn.Module):
    def __init__(self, levels: tuple[int, ...] = FEATURE_LEVELS, weights: dict | None = None):
        """``weights``: this module's own state dict (e.g. packed for a machine without the backbone
        package); by default the packaged ImageNet weights."""
        super().__init__()
        encoder = EfficientNetLite0Encoder()
        if weights is None and not encoder.load_imagenet_weights():
            raise ValueError("the 'perceptual' loss needs the ImageNet weights of EfficientNet-Lite0 (see the warning above)")
        self.levels = tuple(sorted(levels))
        self.stem = nn.Sequential(encoder._conv_stem, encoder._bn0, nn.ReLU6())
        self.blocks = encoder._blocks[: self.levels[-1] + 1]
        if weights is not None:
            self.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # batch statistics stay the ImageNet ones

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(rgb_to_backbone_input(rgb))
        out = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.levels:
                out.append(x)
        return out

    def forward(self, pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        """Mean over levels of L1(pred features, true features) / mean |true features|."""
        with torch.no_grad():
            targets = self.features(true_rgb)
        terms = [(p - t).abs().mean() / t.abs().mean().clamp(min=1e-6) for p, t in zip(self.features(pred_rgb), targets)]
        return torch.stack(terms).mean()
