"""Training losses, by name. Each takes the predicted and true ab (Lab units) and the lightness,
and returns a scalar; ``total_loss`` combines the configured terms with their weights. The
'perceptual' (``perceptual.py``) and 'gan' (``adversarial.py``) terms run networks of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..color.delta_e import ciede2000
from ..color.lab import lab_to_rgb, normalize_ab
from ..models.ab_bins import AbBins

if TYPE_CHECKING:
    from .adversarial import Adversary
    from .perceptual import PerceptualLoss

HUBER_DELTA = 0.1  # in normalised ab units (11 Lab units): L2 near the target, L1 beyond


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(1, 1, size, size)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Gaussian SSIM (11x11, sigma 1.5, K1 0.01, K2 0.03) per channel, valid region only."""
    channels = x.shape[1]
    window = gaussian_window(device=x.device).expand(channels, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sigma_x = blur(x * x) - mu_x**2
    sigma_y = blur(y * y) - mu_y**2
    sigma_xy = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler-Suesstrunk colourfulness per image (|R-G|, |(R+G)/2-B| variant), RGB in [0, 1]: (B,)."""
    r, g, b = (rgb * 255.0).unbind(1)
    rg, yb = (r - g).abs().flatten(1), (0.5 * (r + g) - b).abs().flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False) + 1e-6)
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2 + 1e-6)
    return std + 0.3 * mean


COLOUR_MARGIN = 0.125  # share of each side left out of the colourfulness term


def _interior(lightness: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The central part of L and ab, without a margin of COLOUR_MARGIN of the height and width on each side."""
    h, w = lightness.shape[-2:]
    top, left = int(h * COLOUR_MARGIN), int(w * COLOUR_MARGIN)
    window = (..., slice(top, h - top), slice(left, w - left))
    return lightness[window], ab[window]


def _rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return lab_to_rgb(torch.cat([lightness, ab], dim=1))


def chroma_spread(ab: torch.Tensor) -> torch.Tensor:
    """Mean distance of each pixel's ab from the image's mean ab (Lab units), per image: (B,). The colour
    *within* a photo, blind to its overall tint."""
    return (ab - ab.mean((2, 3), keepdim=True)).norm(dim=1).flatten(1).mean(1)


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: dict[str, LossFn] = {
    "mse": lambda pred, true, lightness: F.mse_loss(normalize_ab(pred), normalize_ab(true)),
    "l1": lambda pred, true, lightness: F.l1_loss(normalize_ab(pred), normalize_ab(true)),
    "huber": lambda pred, true, lightness: F.huber_loss(normalize_ab(pred), normalize_ab(true), delta=HUBER_DELTA),
    "ssim": lambda pred, true, lightness: 1.0 - ssim_map(_rgb(lightness, pred), _rgb(lightness, true)).mean(),
    # The evaluation's colour difference itself (with the true L on both sides), scaled to ~[0, 1].
    "ciede": lambda pred, true, lightness: (
        ciede2000(torch.cat([lightness, pred], dim=1), torch.cat([lightness, true], dim=1)).mean() / 100.0
    ),
    # Penalise only missing colour (prediction duller than the truth), scaled to ~[0, 1], measured away from
    # the borders: on whole images a network learns to paint a saturated band along the edge (it can see the
    # edge through its padding), which raises colourfulness at no cost to the content.
    "colorfulness": lambda pred, true, lightness: (
        F.relu(colorfulness(_rgb(*_interior(lightness, true))) - colorfulness(_rgb(*_interior(lightness, pred)))).mean() / 100.0
    ),
    # The photo's overall colour cast: the distance between the predicted and the true mean ab of each image
    # (normalised units). Per-pixel L1 lets a network paint every ambiguous photo in one warm average tint;
    # this term weighs the whole-image tint on its own, so cool (blue-gray, overcast, snow) photos count.
    # Tried at weight 1 in the campaign (session 13): it did not fall, and held-out CIEDE2000 rose (MODEL_CARD).
    "cast": lambda pred, true, lightness: (normalize_ab(pred).mean((2, 3)) - normalize_ab(true).mean((2, 3))).norm(dim=1).mean(),
    # Missing colour within the photo only (prediction's chroma spread below the truth's, Lab units / 100, away
    # from the borders): unlike 'colorfulness' it cannot be met by tinting the whole photo. In session 15 the
    # colourfulness term taught bolder whole-photo tints (bsd100 tint error 10.3 -> 11.6 Lab units).
    "spread": lambda pred, true, lightness: (
        F.relu(chroma_spread(_interior(lightness, true)[1]) - chroma_spread(_interior(lightness, pred)[1])).mean() / 100.0
    ),
}


@dataclass
class LossNetworks:
    """The networks that the 'perceptual' and 'gan' terms need, and the autocast they run under."""

    perceptual: PerceptualLoss | None = None
    adversary: Adversary | None = None
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def _network_term(name: str, networks: LossNetworks | None, pred: torch.Tensor, true: torch.Tensor, lightness: torch.Tensor):
    if name == "perceptual":
        if networks is None or networks.perceptual is None:
            raise ValueError("the 'perceptual' loss needs its feature network (LossNetworks.perceptual)")
        with networks.autocast():
            return networks.perceptual(_rgb(lightness, pred), _rgb(lightness, true)).float()
    if networks is None or networks.adversary is None:
        raise ValueError("the 'gan' loss needs its discriminator (LossNetworks.adversary)")
    with networks.autocast():
        return networks.adversary.generator_loss(lightness, pred)


NETWORK_LOSSES = ("perceptual", "gan")  # terms computed by a network of their own


def total_loss(
    terms: tuple[tuple[str, float], ...],
    pred: torch.Tensor,
    true: torch.Tensor,
    lightness: torch.Tensor,
    bins: AbBins | None = None,
    bin_logits: torch.Tensor | None = None,
    networks: LossNetworks | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the named terms (computed in float32) and each term's value for logging.

    The ``bins`` term is the rebalanced cross-entropy of a bins head's logits against the true ab;
    ``perceptual`` and ``gan`` use the networks in ``networks``.
    """
    pred, true, lightness = pred.float(), true.float(), lightness.float()
    total = pred.new_zeros(())
    parts = {}
    for name, weight in terms:
        if name == "bins":
            if bins is None or bin_logits is None:
                raise ValueError("the 'bins' loss needs a model with a bins head (--model-arg head=bins)")
            value = bins.cross_entropy(bin_logits, true)
        elif name in NETWORK_LOSSES:
            value = _network_term(name, networks, pred, true, lightness)
        else:
            value = LOSSES[name](pred, true, lightness)
        parts[name] = float(value.detach())
        total = total + weight * value
    return total, parts
