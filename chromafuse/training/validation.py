"""Validation during training, in torch: per-image PSNR, SSIM, CIEDE2000 and colourfulness, the gray
baseline, the combined target score and its best over render gains (the frontier), and which checkpoint is better."""

from __future__ import annotations

import torch

from ..color.delta_e import ciede2000
from ..color.lab import lab_to_rgb, rgb_to_lab
from ..models.device import autocast, to_layout
from .data import lab_batch
from .losses import colorfulness, ssim_map


def batch_quality(
    lightness: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor, with_ssim: bool = True
) -> dict[str, torch.Tensor]:
    """Per-image PSNR (dB, RGB in [0, 1]), SSIM (gaussian, per channel mean; left out without ``with_ssim``),
    mean CIEDE2000 (on the RGB images, as the evaluation scores them) and colourfulness."""
    return _quality(lightness, pred_ab, _truth(lightness, true_ab), with_ssim)


def _truth(lightness: torch.Tensor, true_ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The true images as RGB, and that RGB back in Lab (as CIEDE2000 compares them): once per batch."""
    true = lab_to_rgb(torch.cat([lightness, true_ab], dim=1))
    return true, rgb_to_lab(true)


def _quality(lightness, pred_ab, truth, with_ssim: bool) -> dict[str, torch.Tensor]:
    true, true_lab = truth
    pred = lab_to_rgb(torch.cat([lightness, pred_ab], dim=1))
    mse = ((pred - true) ** 2).flatten(1).mean(1).clamp(min=1e-10)
    return {
        "psnr": 10.0 * torch.log10(1.0 / mse),
        **({"ssim": ssim_map(pred, true).flatten(1).mean(1)} if with_ssim else {}),
        "ciede2000": ciede2000(rgb_to_lab(pred), true_lab).flatten(1).mean(1),
        "colorfulness": colorfulness(pred),
    }


# The default-model target on val/bsd100 (issue 15), as gains over the gray input and a share of the
# references' colourfulness: colourfulness >= 0.85 x the references', PSNR >= 24.0 against gray's 22.85,
# CIEDE2000 <= 10.0 against gray's 11.91.
TARGET_COLOUR_SHARE = 0.85
TARGET_PSNR_GAIN = 24.0 - 22.85
TARGET_CIEDE_GAIN = 11.91 - 10.0


def target_score(metrics: dict, baseline: dict) -> float:
    """How far a model is towards all three targets at once: the smallest of its three margins, each
    scaled so that 1.0 meets its target (colour share, PSNR gain and CIEDE2000 gain over the gray input,
    the gray figures and the references' colourfulness measured on the same images: ``baseline``)."""
    colour = metrics["colorfulness"] / max(baseline["ref_colorfulness"], 1e-6) / TARGET_COLOUR_SHARE
    psnr = (metrics["psnr"] - baseline["psnr"]) / TARGET_PSNR_GAIN
    ciede = (baseline["ciede2000"] - metrics["ciede2000"]) / TARGET_CIEDE_GAIN
    return min(colour, psnr, ciede)


# Render gains (``--saturation``) at which validation also scores a model, to find the best target score a gain
# reaches: the model's frontier, whatever vividness its training left it at (the shipped default records its gain).
FRONTIER_GAINS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.3)


def frontier(by_gain: dict[float, dict], baseline: dict) -> tuple[float, float]:
    """The best target score over render gains (``by_gain``: gain -> mean PSNR / CIEDE2000 / colourfulness) and the
    gain that reaches it (the smallest, on a tie)."""
    scores = {gain: target_score(metrics, baseline) for gain, metrics in sorted(by_gain.items())}
    gain = max(scores, key=lambda g: (scores[g], -g))
    return scores[gain], gain


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    images: torch.Tensor,
    device: torch.device,
    precision: str,
    batch_size: int = 32,
    baseline: dict | None = None,
) -> dict:
    """Mean PSNR / SSIM / CIEDE2000 / colourfulness on RGB of L + predicted ab against the true images. With the gray
    ``baseline`` (see ``gray_baseline``) also the target score, and the frontier: the best target score over
    ``FRONTIER_GAINS`` (the prediction scaled as ``--saturation`` scales it) and its gain."""
    was_training = model.training
    model.eval()
    gains = [gain for gain in FRONTIER_GAINS if gain != 1.0] if baseline else []  # gain 1 is the plain scores
    scores, by_gain = [], {gain: [] for gain in gains}
    for start in range(0, len(images), batch_size):
        lightness, ab = lab_batch(images[start : start + batch_size], device)
        with autocast(device, precision):
            pred = model(to_layout(lightness, device, precision)).float()
        truth = _truth(lightness, ab)
        scores.append(_quality(lightness, pred, truth, with_ssim=True))
        for gain in gains:
            by_gain[gain].append(_quality(lightness, pred * gain, truth, with_ssim=False))
    model.train(was_training)
    metrics = _means(scores)
    if baseline:
        metrics["target"] = target_score(metrics, baseline)
        by_gain[1.0] = scores
        metrics["frontier"], metrics["frontier_gain"] = frontier({g: _means(s) for g, s in by_gain.items()}, baseline)
    return metrics


def _means(scores: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    return {key: float(torch.cat([s[key] for s in scores]).mean()) for key in scores[0]}


def gray_baseline(images: torch.Tensor, batch_size: int = 32) -> dict:
    """The gray input's PSNR / CIEDE2000 on these images and the references' own colourfulness."""
    scores = []
    for start in range(0, len(images), batch_size):
        lightness, ab = lab_batch(images[start : start + batch_size], torch.device("cpu"))
        gray = batch_quality(lightness, torch.zeros_like(ab), ab)
        truth = batch_quality(lightness, ab, ab)
        scores.append({"psnr": gray["psnr"], "ciede2000": gray["ciede2000"], "ref_colorfulness": truth["colorfulness"]})
    return {key: float(torch.cat([s[key] for s in scores]).mean()) for key in scores[0]}


LOWER_IS_BETTER = ("ciede2000",)


def is_better(metrics: dict, best: float | None, select: str) -> bool:
    if best is None:
        return True
    return metrics[select] < best if select in LOWER_IS_BETTER else metrics[select] > best
