"""chromafuse: batch colorization of black-and-white photos.

``from chromafuse import Colorizer`` is the documented entry point. The names below are imported on
first use, so ``import chromafuse`` (and ``chromafuse --help``) does not load torch or OpenCV.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Colorizer": "chromafuse.inference.colorizer",
    "ColorizeOptions": "chromafuse.inference.plan",
    "TrainConfig": "chromafuse.training.config",
    "train": "chromafuse.training.trainer",
    "create_model": "chromafuse.models",
    "list_models": "chromafuse.models",
    "load_checkpoint": "chromafuse.models.checkpoint",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chromafuse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
