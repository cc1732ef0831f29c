"""What steers one colorization: local hints in the input's pixels and an optional global hint, turned
into the arrays the model reads at its render size."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..media.images import COLOR_SPREAD_8BIT, ImageReadError, color_spread, read_image
from .hints import Hint, HintError, hint_map
from .reference import REFERENCE_DIM, reference_from_rgb


@dataclass(frozen=True)
class Guidance:
    hints: tuple[Hint, ...] = ()
    reference: np.ndarray | None = field(default=None, compare=False)  # (REFERENCE_DIM,) global hint

    def __bool__(self) -> bool:
        return bool(self.hints) or self.reference is not None

    def check(self, width: int, height: int, where: str) -> None:
        for hint in self.hints:
            hint.check_inside(width, height, where)

    def arrays(self, width: int, height: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The (3, size, size) hint map and the (REFERENCE_DIM,) global hint (zeros: none) for a width x height input."""
        reference = self.reference if self.reference is not None else np.zeros(REFERENCE_DIM, np.float32)
        return hint_map(list(self.hints), width, height, size), reference


def load_reference(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """A reference photo (a path, or an RGB array) -> its global hint; a file that is not a colour photo is a
    HintError naming it and the reason."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] < 3 or color_spread(_as_uint(source[..., :3])) < COLOR_SPREAD_8BIT:
            raise HintError(f"the reference image (shape {source.shape}) is not a colour photo")
        return reference_from_rgb(source)
    path = Path(source)
    try:
        image = read_image(path)
    except ImageReadError as error:
        raise HintError(f"{path}: cannot use it as the reference photo: {error}") from None
    if not image.is_color:
        raise HintError(f"{path}: the reference photo has no colour (it is grayscale)")
    return reference_from_rgb(image.pixels)


def _as_uint(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels
    return (np.clip(pixels.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
