"""A residual colorizer: the first stages of a ResNet-34 as encoder (to stride 8), an upsampling
decoder with skips, ab predicted at half resolution and upsampled bilinearly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..color.lab import denormalize_ab, normalize_l
from .layers import ConvBlock, UpBlock, resize_to


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


def _stage(c_in: int, c_out: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride), *[BasicBlock(c_out, c_out) for _ in range(blocks - 1)])


class ResNetColorizer(nn.Module):
    def __init__(self, width: int = 64, blocks: tuple[int, int] = (3, 4), dropout: float = 0.1, native_size: int = 256):
        super().__init__()
        self.native_size = native_size
        self.stem = nn.Sequential(nn.Conv2d(1, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.layer1 = _stage(width, width, blocks[0], stride=2)  # stride 4
        self.layer2 = _stage(width, 2 * width, blocks[1], stride=2)  # stride 8
        self.dropout = nn.Dropout2d(dropout)
        self.up4 = UpBlock(2 * width, width, width)
        self.up2 = UpBlock(width, width, width // 2)
        self.head = nn.Sequential(ConvBlock(width // 2, width // 2), nn.Conv2d(width // 2, 2, 1))

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        s2 = self.stem(normalize_l(lightness))
        s4 = self.layer1(s2)
        s8 = self.dropout(self.layer2(s4))
        x = self.up2(self.up4(s8, s4), s2)
        return denormalize_ab(resize_to(self.head(x), lightness).float())
