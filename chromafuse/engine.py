"""Kept for code written against earlier READMEs (``from chromafuse.engine import Colorizer``).

The Colorizer lives in ``chromafuse.inference.colorizer`` and the pixel-plane functions in
``chromafuse.color.fullres``; new code imports ``from chromafuse import Colorizer``.
"""

from .color.fullres import gray_from_lightness, join_lab, lightness_of, render_lightness, to_uint8, upsample_ab
from .inference.colorizer import Colorizer, NoDefaultModelError, default_weights_path

__all__ = [
    "Colorizer",
    "NoDefaultModelError",
    "default_weights_path",
    "gray_from_lightness",
    "join_lab",
    "lightness_of",
    "render_lightness",
    "to_uint8",
    "upsample_ab",
]
