"""Image quality metrics on RGB uint8 images (H, W, 3), as colorization papers report them.

Settings (also written into every report):
- PSNR, MSE, RMSE: over all pixels and channels, data range 255.
- SSIM: skimage.metrics.structural_similarity, channel_axis=-1, data_range=255, its defaults
  otherwise (7x7 uniform window, K1=0.01, K2=0.03, sample covariance), mean over channels.
- CIEDE2000: skimage.color.deltaE_ciede2000 between rgb2lab of both images, mean over pixels.
- Colourfulness: Hasler & Suesstrunk (2003) on |R-G| and |(R+G)/2-B|: std_rgyb + 0.3 mean_rgyb.
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

METRIC_SETTINGS = {
    "psnr": "RGB uint8, all channels, data range 255",
    "mse": "RGB uint8, all channels (0..255 scale)",
    "rmse": "sqrt(mse)",
    "ssim": "skimage structural_similarity(channel_axis=-1, data_range=255), 7x7 uniform window",
    "ciede2000": "skimage deltaE_ciede2000 on rgb2lab (D65), mean over pixels",
    "colorfulness": "Hasler-Suesstrunk on |R-G|, |(R+G)/2-B| (RGB 0..255)",
}
METRICS = ("psnr", "ssim", "mse", "rmse", "ciede2000", "colorfulness")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mse": False, "rmse": False, "ciede2000": False, "colorfulness": True}
PSNR_CAP = 100.0  # identical images: report 100 dB rather than infinity


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ValueError(f"size mismatch: prediction {pred.shape[1]}x{pred.shape[0]}, reference {ref.shape[1]}x{ref.shape[0]}")
    if pred.ndim != 3 or pred.shape[2] != 3 or pred.dtype != np.uint8 or ref.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 images (H, W, 3), got {pred.dtype} {pred.shape}")


def mse(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean((pred.astype(np.float64) - ref.astype(np.float64)) ** 2))


def psnr_from_mse(value: float) -> float:
    return PSNR_CAP if value == 0 else min(PSNR_CAP, float(10.0 * np.log10(255.0**2 / value)))


def colorfulness(rgb: np.ndarray) -> float:
    x = rgb.astype(np.float64)
    rg = np.abs(x[..., 0] - x[..., 1])
    yb = np.abs(0.5 * (x[..., 0] + x[..., 1]) - x[..., 2])
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


MIN_SIDE = 3  # SSIM's smallest window


def check_scorable(ref: np.ndarray) -> None:
    """Refuse an image too small for every metric to be defined (SSIM needs a 3x3 window)."""
    if min(ref.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"{ref.shape[1]}x{ref.shape[0]} px is too small to score: SSIM needs at least {MIN_SIDE} px on each side"
        )


def ssim(pred: np.ndarray, ref: np.ndarray) -> float:
    """scikit-image SSIM; images under 7 px on a side use the largest odd window that fits."""
    check_scorable(ref)
    side = min(ref.shape[:2])
    window = 7 if side >= 7 else side - (1 - side % 2)
    return float(structural_similarity(ref, pred, channel_axis=-1, data_range=255, win_size=window))


def score_pair(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """All metrics for one prediction against its reference."""
    _check_pair(pred, ref)
    err = mse(pred, ref)
    return {
        "psnr": psnr_from_mse(err),
        "ssim": ssim(pred, ref),
        "mse": err,
        "rmse": float(np.sqrt(err)),
        "ciede2000": float(deltaE_ciede2000(rgb2lab(ref), rgb2lab(pred)).mean()),
        "colorfulness": colorfulness(pred),
        "colorfulness_ref": colorfulness(ref),
    }


def aggregate(rows: list[dict[str, float]], key: str) -> dict[str, float]:
    """mean, median, std and worst (by the metric's direction) of one metric over images."""
    values = np.array([row[key] for row in rows], dtype=np.float64)
    if values.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "std": float("nan"), "worst": float("nan")}
    worst = values.min() if HIGHER_IS_BETTER.get(key, True) else values.max()
    return {"mean": float(values.mean()), "median": float(np.median(values)), "std": float(values.std()), "worst": float(worst)}
