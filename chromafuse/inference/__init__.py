"""Inference: the Colorizer (one image, L -> ab -> full-resolution RGB) and folder runs over it."""

from .colorizer import Colorizer, NoDefaultModelError, default_weights_path
from .folder_run import run_colorize
from .plan import ColorizeOptions, FileResult, RunSummary

__all__ = [
    "ColorizeOptions",
    "Colorizer",
    "FileResult",
    "NoDefaultModelError",
    "RunSummary",
    "default_weights_path",
    "run_colorize",
]
