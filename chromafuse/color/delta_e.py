"""CIEDE2000 colour difference in torch, differentiable, matching ``skimage.color.deltaE_ciede2000``.

Sharma, Wu and Dalal (2005), with kL = kC = kH = 1. Square roots and hue angles of neutral colours
(zero chroma) get a small floor so that gradients stay finite where the formula has a kink; the
values differ from scikit-image's by less than 1e-3 there.
"""

from __future__ import annotations

import math

import torch

_EPS = 1e-8
_25_POW_7 = 25.0**7


def _neutral(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.abs() < 1e-6) & (b.abs() < 1e-6)


def _hue(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """atan2 in [0, 2 pi), with a neutral colour's (undefined) hue taken as 0 and a zero gradient."""
    neutral = _neutral(a, b)
    safe_a = torch.where(neutral, torch.ones_like(a), a)
    return torch.remainder(torch.atan2(torch.where(neutral, torch.zeros_like(b), b), safe_a), 2 * math.pi)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, channel_dim: int = -3) -> torch.Tensor:
    """CIEDE2000 between two Lab tensors (channels L, a, b along ``channel_dim``); the channel dim is reduced."""
    l1, a1, b1 = lab1.float().unbind(channel_dim)
    l2, a2, b2 = lab2.float().unbind(channel_dim)
    c_mean = 0.5 * (torch.sqrt(a1 * a1 + b1 * b1 + _EPS) + torch.sqrt(a2 * a2 + b2 * b2 + _EPS))
    c7 = c_mean**7
    g = 0.5 * (1.0 - torch.sqrt(c7 / (c7 + _25_POW_7) + _EPS))
    a1, a2 = a1 * (1.0 + g), a2 * (1.0 + g)
    c1, c2 = torch.sqrt(a1 * a1 + b1 * b1 + _EPS), torch.sqrt(a2 * a2 + b2 * b2 + _EPS)
    h1, h2 = _hue(b1, a1), _hue(b2, a2)

    chroma_product = c1 * c2
    zero_chroma = _neutral(a1, b1) | _neutral(a2, b2)
    dh = h2 - h1
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, torch.where(dh < -math.pi, dh + 2 * math.pi, dh))
    dh = torch.where(zero_chroma, torch.zeros_like(dh), dh)
    dl, dc = l2 - l1, c2 - c1
    dh_big = 2.0 * torch.sqrt(chroma_product + _EPS) * torch.sin(0.5 * dh)

    l_mean, c_mean = 0.5 * (l1 + l2), 0.5 * (c1 + c2)
    h_sum = h1 + h2
    h_mean = torch.where(
        (h1 - h2).abs() > math.pi, torch.where(h_sum < 2 * math.pi, h_sum + 2 * math.pi, h_sum - 2 * math.pi), h_sum
    )
    h_mean = torch.where(zero_chroma, h_sum, 0.5 * h_mean)

    t = (
        1.0
        - 0.17 * torch.cos(h_mean - math.radians(30))
        + 0.24 * torch.cos(2 * h_mean)
        + 0.32 * torch.cos(3 * h_mean + math.radians(6))
        - 0.20 * torch.cos(4 * h_mean - math.radians(63))
    )
    delta_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(h_mean) - 275.0) / 25.0) ** 2))
    c7 = c_mean**7
    r_c = 2.0 * torch.sqrt(c7 / (c7 + _25_POW_7) + _EPS)
    l_offset = (l_mean - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_offset / torch.sqrt(20.0 + l_offset)
    s_c = 1.0 + 0.045 * c_mean
    s_h = 1.0 + 0.015 * c_mean * t
    r_t = -torch.sin(2.0 * delta_theta) * r_c
    dl, dc, dh_big = dl / s_l, dc / s_c, dh_big / s_h
    return torch.sqrt((dl * dl + dc * dc + dh_big * dh_big + r_t * dc * dh_big).clamp(min=0.0) + _EPS)
