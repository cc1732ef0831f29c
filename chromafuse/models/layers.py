"""Small building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """conv3x3 -> BatchNorm -> ReLU, repeated."""

    def __init__(self, c_in: int, c_out: int, repeats: int = 1):
        layers: list[nn.Module] = []
        for i in range(repeats):
            layers += [
                nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class UpBlock(nn.Module):
    """Upsample x to the skip's size (bilinear), concatenate, and fuse with convolutions."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, repeats: int = 1):
        super().__init__()
        self.fuse = ConvBlock(c_in + c_skip, c_out, repeats)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
