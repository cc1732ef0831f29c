"""The Colorizer: L at full resolution -> L at render size -> model -> ab -> upsampled ab joined
with the original L -> RGB. Works on numpy images; folder runs live in batch.py."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .checkpoint import Checkpoint, check_render_settings, load_checkpoint
from .color import rgb_to_lab
from .device import autocast, resolve_device, resolve_precision, uses_channels_last
from .lab_join import OUTPUT_DTYPES, lab_to_srgb

STRIP_PIXELS = 2_000_000  # colour conversion runs in row strips of about this many pixels


def default_weights_path() -> Path:
    return Path(__file__).parent / "weights" / "default.pt"


class NoDefaultModelError(FileNotFoundError):
    pass


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


def render_lightness(lightness: np.ndarray, size: int) -> np.ndarray:
    """Full-resolution L -> the model's square render size (area averaging when shrinking)."""
    h, w = lightness.shape
    interpolation = cv2.INTER_AREA if size <= min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(lightness, (size, size), interpolation=interpolation)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels -> uint8 (16-bit values rounded to the nearest 8-bit level)."""
    if rgb.dtype == np.uint8:
        return rgb
    return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)


@dataclass
class Colorizer:
    model: torch.nn.Module
    checkpoint: Checkpoint
    weights: Path
    device: torch.device
    precision: str
    size: int
    saturation: float = 1.0

    @classmethod
    def load(
        cls,
        weights: str | os.PathLike | None = None,
        device: str = "auto",
        precision: str = "auto",
        size: int | None = None,
        saturation: float | None = None,
    ) -> Colorizer:
        """Load a checkpoint (default: the model shipped with the package) for inference."""
        path = Path(weights) if weights is not None else default_weights_path()
        if weights is None and not path.exists():
            raise NoDefaultModelError("no default model is installed with this chromafuse; pass --weights PATH to a checkpoint")
        torch_device = resolve_device(device)
        resolved = resolve_precision(precision, torch_device)
        model, checkpoint = load_checkpoint(path, torch_device)
        if uses_channels_last(torch_device, resolved):
            model.to(memory_format=torch.channels_last)
        render = size or int(checkpoint.metadata.get("render_size") or getattr(model, "native_size", 256))
        chroma_gain = float(saturation if saturation is not None else checkpoint.metadata.get("saturation", 1.0))
        check_render_settings(render, chroma_gain)
        return cls(model, checkpoint, path, torch_device, resolved, render, chroma_gain)

    @property
    def name(self) -> str:
        return self.checkpoint.metadata.get("name", self.checkpoint.arch)

    @torch.no_grad()
    def predict_ab(self, lightness_small: np.ndarray) -> np.ndarray:
        """(B, S, S) L at render size -> (B, S, S, 2) ab in Lab units, times the saturation gain."""
        batch = torch.from_numpy(np.ascontiguousarray(lightness_small, dtype=np.float32))[:, None].to(self.device)
        if uses_channels_last(self.device, self.precision):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            ab = self.model(batch)
        ab = ab.float() * self.saturation if self.saturation != 1.0 else ab.float()
        return ab.permute(0, 2, 3, 1).cpu().numpy()

    def colorize_lightness(self, lightness: list[np.ndarray], bit_depth: int | None = None) -> list[np.ndarray]:
        """Full-resolution L images -> full-resolution RGB, one batch: float32 in [0, 1], or uint8 / uint16
        when bit_depth is 8 / 16."""
        small = np.stack([render_lightness(lum, self.size) for lum in lightness])
        ab_small = self.predict_ab(small)
        return [join_lab(lum, upsample_ab(ab, *lum.shape), bit_depth) for lum, ab in zip(lightness, ab_small)]

    def colorize(self, image: np.ndarray) -> np.ndarray:
        """Colorize one numpy image: (H, W) or (H, W, 3|4), uint8, uint16 or float in [0, 1].

        Returns RGB (H, W, 3) in the input's dtype (alpha, if given, is appended unchanged).
        """
        pixels, alpha, kind = _split_alpha(image)
        bit_depth = {np.uint8: 8, np.uint16: 16}.get(kind)
        out = self.colorize_lightness([lightness_of(pixels)], bit_depth)[0]
        return out if alpha is None else np.dstack([out, alpha])

    def colorize_paths(self, inputs, output_dir, **options):
        """Colorize files and folders into ``output_dir``; see :func:`chromafuse.batch.run_colorize`."""
        from .batch import ColorizeOptions, run_colorize

        return run_colorize(self, [str(i) for i in inputs], Path(output_dir), ColorizeOptions(**options))


def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, type]:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {shape}")
    kind = image.dtype.type
    if kind not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8, uint16 or float pixels, got {image.dtype}")
    if image.ndim == 2:
        return image, None, kind
    if image.shape[2] == 1:
        return image[..., 0], None, kind
    return image[..., :3], (image[..., 3] if image.shape[2] == 4 else None), kind
