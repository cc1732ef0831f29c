"""Shared fixtures: small generated photos and a tiny trained-for-nothing checkpoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromafuse.models import create_model, model_args_for
from chromafuse.models.checkpoint import Checkpoint, save_checkpoint

TINY_RESNET = {"width": 8, "blocks": (1, 1), "native_size": 64}


def synthetic_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth colourful RGB uint8 image: gradients plus a few coloured discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin((x + y) / 9.0 + seed)], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(6, max(7, min(height, width) // 3))
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.random(3)
    return (image * 255).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray, params: list[int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or [])
    assert ok
    path.write_bytes(data.tobytes())
    return path


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """Two folders of synthetic colour photos of mixed sizes (a training set)."""
    root = tmp_path_factory.mktemp("photos")
    for i in range(12):
        write_rgb(
            root / ("a" if i % 2 else "b") / f"img{i:02d}.jpg",
            synthetic_photo(72 + 8 * (i % 3), 96, seed=i),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny resnet colorizer saved through the real checkpoint code."""
    torch.manual_seed(0)
    args = model_args_for("resnet", **TINY_RESNET)
    model = create_model("resnet", **args)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    save_checkpoint(path, Checkpoint("resnet", args, model.state_dict(), {"name": "tiny-resnet"}))
    return path
