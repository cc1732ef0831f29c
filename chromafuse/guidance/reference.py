"""The global hint: a reference photo's colour distribution, as one vector the model reads.

The vector is an ab histogram (12 x 12 bins of 16 Lab units over -96..96, each pixel counted once,
values beyond the range in the edge bins), normalised to sum 1, then the mean chroma / 50 and a flag
that is 1 when a reference is given. The all-zero vector means "no reference".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

AB_BIN = 16.0
AB_EDGE = 96.0
BINS_PER_AXIS = int(2 * AB_EDGE / AB_BIN)
REFERENCE_DIM = BINS_PER_AXIS * BINS_PER_AXIS + 2
STAT_SIZE = 64  # references are reduced to about this many pixels a side before counting


def reference_vectors(ab: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) ab in Lab units -> (B, REFERENCE_DIM) float32 global hints."""
    ab = ab.float()
    if ab.shape[-1] > STAT_SIZE or ab.shape[-2] > STAT_SIZE:
        ab = F.adaptive_avg_pool2d(ab, (min(ab.shape[-2], STAT_SIZE), min(ab.shape[-1], STAT_SIZE)))
    index = ((ab.clamp(-AB_EDGE, AB_EDGE - 1e-3) + AB_EDGE) / AB_BIN).long()  # (B, 2, H, W) in 0..11
    flat = (index[:, 0] * BINS_PER_AXIS + index[:, 1]).flatten(1)
    histogram = torch.zeros(ab.shape[0], BINS_PER_AXIS * BINS_PER_AXIS, device=ab.device)
    histogram.scatter_add_(1, flat, torch.ones_like(flat, dtype=histogram.dtype))
    histogram /= flat.shape[1]
    chroma = ab.pow(2).sum(1).sqrt().flatten(1).mean(1, keepdim=True) / 50.0
    return torch.cat([histogram, chroma, torch.ones_like(chroma)], dim=1)


def reference_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """A colour photo (H, W, 3) uint8 / uint16 / float in [0, 1] -> its (REFERENCE_DIM,) global hint."""
    import cv2

    from ..color.lab import rgb_to_lab

    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"a reference photo must be in colour (H, W, 3), got shape {rgb.shape}")
    rgb = rgb[..., :3]
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    data = np.clip(rgb.astype(np.float32) / scale, 0.0, 1.0)
    height, width = data.shape[:2]
    factor = STAT_SIZE * 2 / max(height, width)
    if factor < 1.0:  # shrink first: the histogram needs no more than a few thousand pixels
        data = cv2.resize(data, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(torch.from_numpy(data).permute(2, 0, 1)[None])
    return reference_vectors(lab[:, 1:])[0].numpy()
