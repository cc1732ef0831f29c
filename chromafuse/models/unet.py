"""The classic encoder-decoder colorizer: a U-Net from L to ab, trained from scratch."""

from __future__ import annotations

import torch
from torch import nn

from ..color.lab import denormalize_ab, normalize_l
from .layers import ConvBlock, UpBlock


class UNetColorizer(nn.Module):
    def __init__(self, base_width: int = 32, depth: int = 4, dropout: float = 0.1, native_size: int = 256):
        super().__init__()
        self.native_size = native_size
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.stem = ConvBlock(1, widths[0], repeats=2)
        self.down = nn.ModuleList(
            [nn.Sequential(nn.MaxPool2d(2), ConvBlock(widths[i], widths[i + 1], repeats=2)) for i in range(depth)]
        )
        self.dropout = nn.Dropout2d(dropout)
        self.up = nn.ModuleList([UpBlock(widths[i + 1], widths[i], widths[i], repeats=2) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], 2, 1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = self.stem(normalize_l(lightness))
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.dropout(skips.pop())
        for up in self.up:
            x = up(x, skips.pop())
        return denormalize_ab(self.head(x).float())
