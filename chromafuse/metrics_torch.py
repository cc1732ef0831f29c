"""Quality of a batch in torch (for validation during training): PSNR, SSIM, CIEDE2000, colourfulness."""

from __future__ import annotations

import torch

from .color import lab_to_rgb, rgb_to_lab
from .delta_e import ciede2000
from .losses import colorfulness, ssim_map


def batch_quality(lightness: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR (dB, RGB in [0, 1]), SSIM (gaussian, per channel mean), mean CIEDE2000 (on the
    RGB images, as the evaluation scores them) and colourfulness."""
    pred = lab_to_rgb(torch.cat([lightness, pred_ab], dim=1))
    true = lab_to_rgb(torch.cat([lightness, true_ab], dim=1))
    mse = ((pred - true) ** 2).flatten(1).mean(1).clamp(min=1e-10)
    return {
        "psnr": 10.0 * torch.log10(1.0 / mse),
        "ssim": ssim_map(pred, true).flatten(1).mean(1),
        "ciede2000": ciede2000(rgb_to_lab(pred), rgb_to_lab(true)).flatten(1).mean(1),
        "colorfulness": colorfulness(pred),
    }
