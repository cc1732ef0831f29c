"""Which runtime runs the model: torch, ONNX Runtime or OpenVINO, and what ``--backend auto`` picks.

``auto`` follows measurements of the bundled model at render 256 (``benchmarks/backend_throughput.py``):
- CPU with AMX-BF16 and the openvino extra: OpenVINO bf16 (2-core Xeon: 94.9 images/s against torch bf16
  39.1, ONNX Runtime fp32 37.9, torch fp32 14.1);
- CPU without AMX: ONNX Runtime fp32 (2.1x torch fp32; 1.1-1.4x torch bf16 on AVX512-BF16 CPUs);
- CUDA: torch.
It applies to ``.onnx`` files and to the bundled model at its own render size; another checkpoint, the
guided model or another ``--size`` stays on torch (an ONNX build renders at one size)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.device import cpu_has_amx_bf16, resolve_precision
from .onnx_model import OnnxModel, cached_onnx, onnx_extra_installed
from .openvino_model import OpenVinoModel, openvino_installed

BACKENDS = ("auto", "torch", "onnx", "openvino")


def auto_backend(is_onnx: bool, bundled: bool, device: torch.device, precision: str) -> str:
    """The backend ``auto`` picks for an ``.onnx`` file or a checkpoint (``bundled``: the default model at
    its own render size) on ``device`` at ``precision``."""
    if device.type != "cpu":
        return "onnx" if is_onnx else "torch"  # an .onnx file then fails with its reason
    if not (is_onnx or bundled):
        return "torch"
    amx = cpu_has_amx_bf16()
    if amx and openvino_installed() and (precision == "auto" or (is_onnx and precision == "bf16")):
        return "openvino"
    if is_onnx:
        return "onnx"
    torch_bf16_fast = amx and resolve_precision(precision, device) == "bf16"
    if precision in ("auto", "fp32") and not torch_bf16_fast and onnx_extra_installed():
        return "onnx"
    return "torch"


def runtime_model(backend: str, path: Path, device: torch.device, precision: str, size: int | None) -> OnnxModel | OpenVinoModel:
    """``path`` (an ``.onnx`` file, or a checkpoint built once into the cache) on ONNX Runtime or OpenVINO;
    ValueError, naming the file, where it cannot run as asked."""
    if backend == "openvino":
        if device.type != "cpu":
            raise ValueError(f"{path}: OpenVINO runs on the CPU here (got --device {device.type})")
    elif device.type != "cpu" or precision not in ("auto", "fp32"):
        raise ValueError(f"{path}: ONNX models run on the CPU in fp32 here (got --device {device.type}, --precision {precision})")
    source = path if path.suffix.lower() == ".onnx" else cached_onnx(path)
    model = OpenVinoModel(source, precision) if backend == "openvino" else OnnxModel(source)
    if size is not None and size != model.native_size:
        raise ValueError(f"{path}: this ONNX model renders at {model.native_size} px only (got --size {size})")
    return model
