"""Guided colorization: local colour hints and a reference photo's colours, as users give them, as the
model reads them, and as training and evaluation sample them from the true colours."""

from .hints import Hint, HintError, hint_map, load_hints_file, make_hint, parse_hint_option
from .reference import REFERENCE_DIM, reference_from_rgb

__all__ = [
    "REFERENCE_DIM",
    "Hint",
    "HintError",
    "hint_map",
    "load_hints_file",
    "make_hint",
    "parse_hint_option",
    "reference_from_rgb",
]
