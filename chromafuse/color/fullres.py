"""Full-resolution pixel planes on numpy: lightness L out of an image, L down to the render size,
ab back up to full size, and L + ab joined into RGB, in row strips so that a 40-megapixel scan never
exists as a float RGB copy."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from .lab import rgb_to_lab
from .srgb import OUTPUT_DTYPES, lab_to_srgb

STRIP_PIXELS = 2_000_000  # colour conversion runs in row strips of about this many pixels


def _strips(height: int, width: int):
    rows = max(1, STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        yield slice(top, min(top + rows, height))


def _float_strip(pixels: np.ndarray) -> np.ndarray:
    """A strip of gray (H, W) or RGB (H, W, 3) pixels, any supported dtype -> RGB float32 in [0, 1]."""
    if pixels.dtype == np.uint8:
        data = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        data = pixels.astype(np.float32) / 65535.0
    else:
        data = np.clip(pixels.astype(np.float32), 0.0, 1.0)
    return np.repeat(data[..., None], 3, axis=2) if data.ndim == 2 else data


@functools.lru_cache(maxsize=2)
def _gray_lightness_table(dtype_name: str) -> np.ndarray:
    """L of every neutral gray level of a uint8 / uint16 image: one table lookup per pixel."""
    levels = np.arange(np.iinfo(dtype_name).max + 1, dtype=np.float32) / np.iinfo(dtype_name).max
    gray = torch.from_numpy(levels).view(1, 1, -1).expand(3, 1, -1)
    return rgb_to_lab(gray)[0, 0].numpy()


def lightness_of(pixels: np.ndarray) -> np.ndarray:
    """Gray (H, W) or RGB (H, W, 3) image (uint8, uint16 or float in [0, 1]) -> (H, W) float32 Lab L.

    Gray integer images use a lookup table; others convert in strips, so a 40-megapixel scan
    never exists as a float RGB copy.
    """
    if pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16):
        return _gray_lightness_table(pixels.dtype.name)[pixels]
    out = np.empty(pixels.shape[:2], dtype=np.float32)
    for rows in _strips(*pixels.shape[:2]):
        chunk = torch.from_numpy(_float_strip(pixels[rows])).permute(2, 0, 1)
        out[rows] = rgb_to_lab(chunk)[0].numpy()
    return out


def join_lab(lightness: np.ndarray, ab: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Full-resolution L (H, W) + ab (H, W, 2) -> RGB (H, W, 3), in strips: float32 in [0, 1] when
    bit_depth is None, else uint8 (8) or uint16 (16)."""
    if bit_depth not in OUTPUT_DTYPES:
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    out = np.empty((*lightness.shape, 3), dtype=OUTPUT_DTYPES[bit_depth])
    for rows in _strips(*lightness.shape):
        out[rows] = lab_to_srgb(lightness[rows], ab[rows], bit_depth)
    return out


def gray_from_lightness(lightness: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Full-resolution L (H, W) -> the neutral gray RGB (H, W, 3) with that lightness (the "before" image)."""
    return join_lab(lightness, np.zeros((*lightness.shape, 2), np.float32), bit_depth)


def upsample_ab(ab_small: np.ndarray, height: int, width: int) -> np.ndarray:
    """(S, S, 2) -> (H, W, 2), bilinear (pixel-centre aligned, as F.interpolate align_corners=False)."""
    return cv2.resize(ab_small, (width, height), interpolation=cv2.INTER_LINEAR)


def join_small_ab(lightness: np.ndarray, ab_small: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Full-resolution L + the model's render-size ab -> full-resolution RGB: the ab upsampled, then joined."""
    return join_lab(lightness, upsample_ab(ab_small, *lightness.shape), bit_depth)


def render_lightness(lightness: np.ndarray, size: int, detail: float = 1.0) -> np.ndarray:
    """Full-resolution L -> the model's square render size (area averaging when shrinking). ``detail`` < 1
    first area-averages a photo larger than ``detail * size`` on a side down to that many pixels there, so
    the model sees no finer detail than its training photos had (then the usual resize to the render size)."""
    h, w = lightness.shape
    if detail < 1.0:
        most = max(1, round(detail * size))
        if h > most or w > most:
            h, w = min(h, most), min(w, most)
            lightness = cv2.resize(lightness, (w, h), interpolation=cv2.INTER_AREA)
    interpolation = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(lightness, (size, size), interpolation=interpolation)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels -> uint8 (16-bit values rounded to the nearest 8-bit level)."""
    if rgb.dtype == np.uint8:
        return rgb
    return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
