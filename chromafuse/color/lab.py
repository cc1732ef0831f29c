"""sRGB <-> CIE Lab (D65, 2 degree observer) in torch, matching scikit-image.

Tensors are float32 of shape (*, 3, H, W); RGB in [0, 1], Lab in its natural units
(L in [0, 100], a and b roughly in [-110, 110]). Gradients stay finite everywhere:
every power is taken on a clamped argument.
"""

from __future__ import annotations

import torch

# Same constants as skimage.color (sRGB primaries, D65 white for the 2 degree observer).
_XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)

# Network normalisation of L and ab lives here and nowhere else.
L_CENTER = 50.0
L_SCALE = 50.0
AB_SCALE = 110.0


def _check_image(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected {name} of shape (*, 3, H, W), got {tuple(x.shape)}")


def _working_dtype(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64 (for gradcheck); everything else is computed in float32."""
    return x if x.dtype == torch.float64 else x.float()


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _channel_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(device=like.device, dtype=like.dtype).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> Lab. Matches ``skimage.color.rgb2lab``."""
    _check_image(rgb, "an RGB image")
    rgb = _working_dtype(rgb)
    linear = torch.where(
        rgb > 0.04045,
        ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4,
        rgb / 12.92,
    )
    xyz = _mix(linear, _XYZ_FROM_RGB) / _channel_view(_WHITE_D65, linear)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-3)
    lightness = 116.0 * fy - 16.0
    return torch.stack([lightness, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> sRGB clipped to [0, 1]. Matches ``skimage.color.lab2rgb``."""
    _check_image(lab, "a Lab image")
    lab = _working_dtype(lab)
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # skimage clips negative z the same way
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.2068966) ** 3, (f - 16.0 / 116.0) / 7.787)
    linear = _mix(xyz * _channel_view(_WHITE_D65, xyz), _RGB_FROM_XYZ)
    rgb = torch.where(
        linear > 0.0031308,
        1.055 * linear.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055,
        12.92 * linear,
    )
    return rgb.clamp(0.0, 1.0)


def gray_rgb_from_l(lightness: torch.Tensor) -> torch.Tensor:
    """Lightness (*, 1, H, W) -> the neutral sRGB image (*, 3, H, W) with that lightness."""
    zeros = torch.zeros_like(lightness)
    return lab_to_rgb(torch.cat([lightness, zeros, zeros], dim=-3))


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    return (lightness - L_CENTER) / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(ab_normalized: torch.Tensor) -> torch.Tensor:
    return ab_normalized * AB_SCALE
