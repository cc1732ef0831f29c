"""Choose the device and precision once, with safe fallbacks."""

from __future__ import annotations

import contextlib
import functools

import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu. Explicit names are checked, not silently replaced."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from error
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available in this PyTorch build")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available")
    return device


def cpu_supports_bf16() -> bool:
    """Whether bf16 runs natively here (AVX512-BF16 or AMX-BF16). oneDNN also "supports" bf16 on plain AVX512 by
    emulation, where a fusion-s training step ran 2x slower than fp32 (measured on a Xeon without AVX512-BF16)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        supported = bool(check()) if check is not None else False
    except RuntimeError:
        return False
    flags = _cpu_flags()
    return supported and (flags is None or bool({"amx_bf16", "avx512_bf16"} & flags))  # no cpuinfo: trust oneDNN


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (Linux: /proc/cpuinfo), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next((frozenset(line.split(":", 1)[1].split()) for line in handle if line.startswith("flags")), frozenset())
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """Whether the CPU has AMX-BF16 tiles (Linux: its cpuinfo flags), where torch bf16 is 2-3x fp32; without
    AMX, bf16 runs on AVX512-BF16 at best, and ONNX Runtime fp32 was faster (measured)."""
    return "amx_bf16" in (_cpu_flags() or ())


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' picks the fastest safe choice; fp16 never runs on the CPU (bf16 does, where supported)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if device.type == "cpu":
        if precision == "fp16":
            raise ValueError("fp16 is not supported on the CPU: use bf16 or fp32")
        if precision == "auto":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return precision
    if device.type == "cuda":
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    return "fp32" if precision == "auto" else precision


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def uses_channels_last(device: torch.device, precision: str) -> bool:
    # channels_last pays off with oneDNN on CPU, fp32 as well as bf16 (fusion-s in fp32 on a 2-core AVX2 EPYC:
    # training 1.14x, inference at 256 px 1.3x; benchmarks/train_throughput.py --layouts), and on CUDA's tensor cores.
    return device.type in ("cuda", "cpu")


def to_layout(x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if uses_channels_last(device, precision) else x
