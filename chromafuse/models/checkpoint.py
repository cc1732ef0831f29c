"""Checkpoints: one file with arch, model args, weights, training config, data summary, metrics.

Loading uses ``torch.load(weights_only=True)``: a file that tries to run code is refused
before anything executes, and keys must match the architecture exactly.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..media.files import write_atomic
from .registry import check_side, create_model

FORMAT = "chromafuse-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """The file is not a usable chromafuse checkpoint."""


@dataclass
class Checkpoint:
    arch: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Serialise, then write through a temporary file and a rename: never a half-written file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(Path(path), buffer.getvalue())


def save_checkpoint(path: Path, checkpoint: Checkpoint, half: bool = False) -> None:
    """Save atomically; ``half`` stores floating-point weights as fp16 (for shipping)."""
    state = {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": checkpoint.arch,
        "model_args": dict(checkpoint.model_args),
        "state_dict": state,
        "metadata": checkpoint.metadata,
    }
    if checkpoint.training_state is not None:
        payload["training_state"] = checkpoint.training_state
    atomic_torch_save(payload, path)


def _reason(error: Exception) -> str:
    """The informative line of a torch.load failure (e.g. the global a pickle tried to use)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line.split(" Please use")[0].replace("WeightsUnpickler error: ", "")
    return lines[0] if lines else type(error).__name__


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint file without building the model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to unpickle means: not a checkpoint we can trust
        raise CheckpointError(f"{path}: not a chromafuse checkpoint (refused to load: {_reason(error)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a chromafuse checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r} is not supported (expected {VERSION})")
    for key in ("arch", "model_args", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    if not isinstance(payload["arch"], str):
        raise CheckpointError(f"{path}: 'arch' is {type(payload['arch']).__name__}, not a model name")
    for key in ("model_args", "metadata"):
        if not isinstance(payload.get(key, {}), dict):
            raise CheckpointError(f"{path}: '{key}' is {type(payload[key]).__name__}, not a mapping")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of tensor names to tensors")
    return Checkpoint(
        arch=payload["arch"],
        model_args=dict(payload["model_args"]),
        state_dict=payload["state_dict"],
        metadata=payload.get("metadata", {}),
        training_state=payload.get("training_state"),
    )


def build_model(checkpoint: Checkpoint, source: str | os.PathLike = "checkpoint") -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights strictly, in fp32."""
    args = dict(checkpoint.model_args)
    if "pretrained_backbone" in args:
        args["pretrained_backbone"] = False  # the checkpoint's own weights replace ImageNet's
    try:
        model = create_model(checkpoint.arch, **args)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{source}: cannot build model {checkpoint.arch!r}: {error}") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint.state_dict.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: weights do not match {checkpoint.arch!r}: {error}") from None
    model.model_args = dict(checkpoint.model_args)
    return model


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, Checkpoint]:
    """Load a checkpoint file: returns the model (eval mode, on ``device``) and the checkpoint."""
    checkpoint = read_checkpoint(path)
    model = build_model(checkpoint, source=path).to(device).eval()
    return model, checkpoint


def check_render_settings(render_size: int | None = None, saturation: float | None = None, detail: float | None = None) -> None:
    """Refuse a render size, chroma gain or input detail that colorizing cannot use (None: not given)."""
    check_side("render size", render_size)
    if saturation is not None and not 0.0 <= saturation <= 4.0:
        raise ValueError(f"saturation must be between 0 and 4, got {saturation}")
    if detail is not None and not 0.25 <= detail <= 1.0:
        raise ValueError(f"detail must be between 0.25 and 1 (a fraction of the render size), got {detail}")


def ema_weights(checkpoint: Checkpoint) -> dict[str, torch.Tensor] | None:
    """The averaged (EMA) weights a run's ``last.ckpt`` keeps in its training state, or None. They are the
    weights its validation figures (``metadata['metrics']``) describe; ``state_dict`` holds the raw ones."""
    saved = (checkpoint.training_state or {}).get("ema")
    if not isinstance(saved, dict):
        return None
    weights = {k.removeprefix("module."): v for k, v in saved.items() if k.startswith("module.")}
    return weights or None


def frontier_gain(checkpoint: Checkpoint, source: str | os.PathLike) -> float:
    """The render gain at which the checkpoint's last validation reached its best target score (``--select frontier``)."""
    gain = checkpoint.metadata.get("metrics", {}).get("frontier_gain")
    if not isinstance(gain, (int, float)):
        raise ValueError(
            f"{source}: records no frontier gain (a run validated with `train --select frontier` records one); give a number"
        )
    return float(gain)


def prepare_export(
    source: str | os.PathLike,
    target: str | os.PathLike,
    temperature: float | None = None,
    ema: bool | None = None,
    **metadata: Any,
) -> Checkpoint:
    """The checkpoint an export writes: weights and metadata, no training state. ``temperature`` sets the
    decoding temperature of a bins head (lower: more vivid); metadata such as ``render_size``,
    ``saturation``, ``detail``, ``name`` and ``card`` (a dict of text) is recorded as given, and a
    ``saturation`` of ``"frontier"`` records the gain the checkpoint's validation found best. ``ema``: export
    the averaged weights a run's ``last.ckpt`` keeps (None: those if it keeps them, else its weights;
    True: refuse a checkpoint without them; False: the raw weights). Which ones is recorded as ``weights``."""
    checkpoint = read_checkpoint(source)
    if metadata.get("saturation") == "frontier":
        metadata["saturation"] = frontier_gain(checkpoint, source)
    check_render_settings(metadata.get("render_size"), metadata.get("saturation"), metadata.get("detail"))
    model_args = dict(checkpoint.model_args)
    if temperature is not None:
        if model_args.get("head") != "bins":
            raise ValueError(f"{source}: a temperature applies only to models with a bins head")
        if not 0.0 < temperature <= 2.0:
            raise ValueError(f"temperature must be in (0, 2], got {temperature}")
        model_args["temperature"] = float(temperature)
    averaged = ema_weights(checkpoint) if ema is not False else None
    if ema and averaged is None:
        raise ValueError(f"{source}: keeps no averaged (EMA) weights (a run's last.ckpt trained with --ema keeps them)")
    weights = averaged if averaged is not None else checkpoint.state_dict
    kind = "ema" if averaged is not None else checkpoint.metadata.get("weights", "trained")
    checkpoint = replace(checkpoint, model_args=model_args, state_dict=weights)
    build_model(checkpoint, source)  # refuse to export weights that do not load
    if Path(target).resolve() == Path(source).resolve():
        raise ValueError(f"{target}: export would overwrite its source")
    return Checkpoint(checkpoint.arch, model_args, weights, {**checkpoint.metadata, **metadata, "weights": kind})


def export_checkpoint(
    source: str | os.PathLike,
    target: str | os.PathLike,
    half: bool = True,
    temperature: float | None = None,
    ema: bool | None = None,
    **metadata: Any,
) -> Path:
    """Write a small inference checkpoint (fp16 by default); see :func:`prepare_export`."""
    save_checkpoint(Path(target), prepare_export(source, target, temperature, ema, **metadata), half=half)
    return Path(target)
