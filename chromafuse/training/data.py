"""Training data: folders of colour photos -> a decoded, resized uint8 cache -> augmented batches.

Decoding JPEGs on every step would eat the two CPU cores the model needs, so every image is
decoded once, resized (squashed) to a square of ``cache_size`` -- the same square the engine
renders at -- and kept in one memory-mapped array. Batches are sampled with per-folder weights
and augmented on the fly with one batched affine warp (resized crop, flip, rotation).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color.lab import rgb_to_lab
from ..media.files import cache_dir as default_cache_dir
from ..media.images import COLOR_SPREAD_8BIT, ImageReadError, check_header, color_spread
from ..media.listing import list_images
from .config import VALIDATION_SAMPLES
from .losses import gaussian_window


@dataclass
class ImageCache:
    images: np.ndarray  # (N, S, S, 3) uint8 RGB
    files: list[str]
    groups: np.ndarray  # (N,) int folder index
    group_names: list[str]
    skipped: dict[str, int]

    def summary(self) -> dict:
        counts = Counter(self.groups.tolist())
        return {
            "images": len(self.files),
            "cache_size": int(self.images.shape[1]) if len(self.files) else 0,
            "folders": {name: counts.get(i, 0) for i, name in enumerate(self.group_names)},
            "skipped": dict(self.skipped),
        }


def _group_of(path: Path, root: Path, multiple_roots: bool) -> str:
    relative = path.relative_to(root)
    sub = relative.parts[0] if len(relative.parts) > 1 else "."
    return f"{root.name}/{sub}" if multiple_roots else sub


def _decode_for_cache(path: Path, size: int, min_side: int) -> tuple[np.ndarray | None, str | None]:
    """Returns (image, None) or (None, reason) with reason in unreadable / over_pixel_limit / grayscale / too_small."""
    try:
        check_header(path)  # the pixel limit colorize uses, before the file is read whole
    except ImageReadError as error:
        return None, "over_pixel_limit" if "limit" in str(error) or "bomb" in str(error) else "unreadable"
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None, "unreadable"
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        return None, "unreadable"
    if min(bgr.shape[:2]) < min_side:
        return None, "too_small"
    if color_spread(bgr) < COLOR_SPREAD_8BIT:  # channel order does not matter for the spread
        return None, "grayscale"
    resized = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB), None


def _cache_key(files: list[Path], size: int, min_side: int) -> str:
    digest = hashlib.sha1(f"v1 {size} {min_side} {COLOR_SPREAD_8BIT}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def build_cache(roots: list[Path], size: int, cache_dir: Path | None = None, min_side: int = 64, workers: int = 2) -> ImageCache:
    """Decode every image under ``roots`` once; reuse the cache while the files are unchanged."""
    roots = [Path(r) for r in roots]
    entries = [(path, _group_of(path, root, len(roots) > 1)) for root in roots for path in list_images([root])]
    if not entries:
        raise ValueError(f"no images found in {', '.join(map(str, roots))}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = _cache_key([p for p, _ in entries], size, min_side)
    array_path, index_path = cache_dir / f"images-{size}-{key}.npy", cache_dir / f"images-{size}-{key}.json"
    if array_path.exists() and index_path.exists():
        index = json.loads(index_path.read_text())
        images = np.load(array_path, mmap_mode="r")
        return ImageCache(
            images, index["files"], np.array(index["groups"], dtype=np.int64), index["group_names"], index["skipped"]
        )

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp_array = array_path.with_suffix(f".tmp{os.getpid()}.npy")
    try:
        kept, skipped = _decode_to_disk(entries, size, min_side, tmp_array, workers)
        if not kept:
            raise ValueError(f"no usable colour images in {', '.join(map(str, roots))} (skipped: {skipped})")
        os.replace(tmp_array, array_path)
    finally:
        tmp_array.unlink(missing_ok=True)
    group_names = sorted({group for _, group in kept})
    files = [str(path.resolve()) for path, _ in kept]
    groups = [group_names.index(group) for _, group in kept]
    tmp_index = index_path.with_suffix(f".tmp{os.getpid()}")
    tmp_index.write_text(json.dumps({"files": files, "groups": groups, "group_names": group_names, "skipped": skipped}))
    os.replace(tmp_index, index_path)
    images = np.load(array_path, mmap_mode="r")
    return ImageCache(images, files, np.array(groups, dtype=np.int64), group_names, skipped)


def _decode_to_disk(
    entries: list[tuple[Path, str]], size: int, min_side: int, out: Path, workers: int
) -> tuple[list[tuple[Path, str]], dict[str, int]]:
    """Decode ``entries`` into the .npy file ``out`` one image at a time, so memory stays flat however large the
    pool (40,000 photos at 256 px are 7.8 GB). Rows of skipped images are squeezed out at the end; returns the
    entries kept, in order, and the skip reasons counted."""
    rows = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=(len(entries), size, size, 3))
    kept: list[tuple[Path, str]] = []
    reasons: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for entry, (image, reason) in zip(entries, pool.map(lambda e: _decode_for_cache(e[0], size, min_side), entries)):
            if image is None:
                reasons[reason] += 1
                continue
            rows[len(kept)] = image
            kept.append(entry)
    if len(kept) < len(entries):
        # A .npy header states its shape: copy the kept rows into a file of the right length, a block at a time.
        squeezed = out.with_suffix(".part.npy")
        try:
            final = np.lib.format.open_memmap(squeezed, mode="w+", dtype=np.uint8, shape=(len(kept), size, size, 3))
            for start in range(0, len(kept), 1024):
                end = min(start + 1024, len(kept))
                final[start:end] = rows[start:end]
            final.flush()
            del final, rows
            os.replace(squeezed, out)
        finally:
            squeezed.unlink(missing_ok=True)
    else:
        rows.flush()
        del rows
    return kept, dict(reasons)


def decode_squares(files: list[str], size: int) -> np.ndarray:
    """Decode files (already vetted by a cache) straight to ``size`` squares, e.g. validation at render size."""
    images = []
    for file in files:
        image, reason = _decode_for_cache(Path(file), size, min_side=1)
        if image is None:
            raise ValueError(f"{file}: {reason} (it changed since the cache was built)")
        images.append(image)
    return np.stack(images) if images else np.empty((0, size, size, 3), np.uint8)


def split_indices(files: list[str], val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split by a hash of the file name: the same file always lands on the same side."""
    is_val = np.array([zlib.crc32(Path(f).name.encode()) % 10_000 < val_fraction * 10_000 for f in files], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def validation_sample(files: list[str], indices: np.ndarray, count: int, how: str = "spread") -> np.ndarray:
    """Which ``count`` of ``indices`` (a split, in path order) to validate on. 'spread': those first in an order
    hashed from their file names, so every folder is represented in proportion, kept in path order; 'first': the
    first ``count`` in path order (runs made before 'spread' existed: in a pool of many folders, only the folders
    whose names sort first)."""
    if how not in VALIDATION_SAMPLES:
        raise ValueError(f"validation sample must be one of {', '.join(VALIDATION_SAMPLES)}, got {how!r}")
    if how == "first" or len(indices) <= count:
        return indices[:count]
    keys = np.array([zlib.crc32(b"validation order " + Path(files[i]).name.encode()) for i in indices])
    return np.sort(indices[np.argsort(keys, kind="stable")[:count]])


def sampling_weights(
    groups: np.ndarray, balance: float, group_names: list[str] | None = None, folder_weights: dict[str, float] | None = None
) -> torch.Tensor:
    """Weight each image by 1 / (images in its folder) ** balance: 0 = uniform, 1 = folders equal.

    ``folder_weights`` multiplies that by a factor per folder, named as in ``group_names`` or by one
    of its ``/``-separated parts ('bsds500' matches 'train/bsds500'); a name matching no folder is an error.
    """
    counts = np.bincount(groups)
    weights = 1.0 / counts[groups].astype(np.float64) ** balance
    names = group_names or []
    for name, factor in (folder_weights or {}).items():
        matched = [i for i, group in enumerate(names) if name == group or name in group.split("/")]
        if not matched:
            raise ValueError(f"folder weight {name!r} matches no training folder (folders: {', '.join(names)})")
        weights[np.isin(groups, matched)] *= factor
    if len(weights) and not weights.sum() > 0:
        raise ValueError(f"folder weights {folder_weights} leave no training image to sample")
    return torch.from_numpy(weights)


def augment_batch(
    rgb_uint8: torch.Tensor, out_size: int, generator: torch.Generator, min_scale: float, max_rotation_deg: float
) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, out, out) float in [0, 1]: random resized crop, h-flip, rotation."""
    batch = rgb_uint8.shape[0]
    images = rgb_uint8.permute(0, 3, 1, 2).float().div_(255.0)

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator, dtype=torch.float64) * (high - low) + low

    area = uniform(min_scale, 1.0)
    log_ratio = uniform(math.log(3 / 4), math.log(4 / 3))
    width = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    height = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    centre_x = (uniform(-1.0, 1.0) * (1.0 - width)).float()
    centre_y = (uniform(-1.0, 1.0) * (1.0 - height)).float()
    angle = (uniform(-max_rotation_deg, max_rotation_deg) * math.pi / 180.0).float()
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    width, height = width.float() * flip, height.float()
    theta = torch.stack(
        [torch.stack([width * cos, -height * sin, centre_x], 1), torch.stack([width * sin, height * cos, centre_y], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.device), (batch, 3, out_size, out_size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp_(0.0, 1.0)


def sharpen_lightness(lightness: torch.Tensor, max_amount: float, generator: torch.Generator, sigma: float = 1.0) -> torch.Tensor:
    """(B, 1, S, S) Lab L in [0, 100] -> the same, unsharp-masked by an amount drawn per image from [0, max_amount]:
    L + a (L - gaussian(L)). The pool's photos (at most 192 px) reach the training crops upsampled, so their
    edges are softer than those of larger photos shown at the same size; this shows the model crisper ones."""
    if max_amount <= 0:
        return lightness
    radius = max(1, math.ceil(2 * sigma))
    window = gaussian_window(2 * radius + 1, sigma, lightness.device).to(lightness.dtype)
    blurred = F.conv2d(F.pad(lightness, (radius, radius, radius, radius), mode="reflect"), window)
    amount = (torch.rand(lightness.shape[0], generator=generator) * max_amount).to(lightness).view(-1, 1, 1, 1)
    return (lightness + amount * (lightness - blurred)).clamp_(0.0, 100.0)


def resize_batch(rgb_uint8: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, out, out) float in [0, 1], antialiased; for validation."""
    images = rgb_uint8.permute(0, 3, 1, 2).float().div_(255.0)
    if images.shape[-1] == out_size:
        return images
    return F.interpolate(images, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False).clamp_(0.0, 1.0)


def lab_batch(rgb: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(rgb.to(device))
    return lab[:, :1], lab[:, 1:]
