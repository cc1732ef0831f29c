"""Build colorizers by name: ``create_model("fusion-s")``.

Every registered model takes L in Lab units, shape (B, 1, H, W), and returns ab in Lab units,
shape (B, 2, H, W). Its constructor arguments are its whole configuration, so a checkpoint
holding ``arch`` and ``model_args`` rebuilds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, builder: Callable[..., nn.Module], description: str = "", **defaults: Any) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, builder, defaults, description)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None


def model_args_for(name: str, **overrides: Any) -> dict[str, Any]:
    """The full constructor arguments of a registered model, defaults merged with overrides."""
    return {**model_spec(name).defaults, **overrides}


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Instantiate a registered model; ``overrides`` replace its default arguments."""
    spec = model_spec(name)
    accepted = inspect.signature(spec.builder).parameters
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} takes no argument {', '.join(map(repr, unknown))}; it takes: {', '.join(accepted)}")
    model = spec.builder(**model_args_for(name, **overrides))
    model.arch = name
    return model


def check_side(name: str, value: int | None) -> None:
    """Refuse an image side the models cannot take (their strides need multiples of 32); None: not given."""
    if value is not None and (value < 32 or value % 32):
        raise ValueError(f"{name} must be a multiple of 32 and at least 32, got {value}")
