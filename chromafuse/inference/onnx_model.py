"""An exported colorizer run by ONNX Runtime on the CPU, called like the torch model: L (B, 1, S, S)
in Lab units -> ab (B, 2, S, S). Its name, render size and card come from the file's metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..media.files import cache_dir
from ..models.checkpoint import Checkpoint, prepare_export
from ..models.onnx_export import export_onnx, require_onnx


class OnnxModel:
    def __init__(self, path: Path, threads: int | None = None):
        require_onnx("onnxruntime")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads() or (os.cpu_count() or 1)
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types for files it cannot use
            raise ValueError(f"{path}: not an ONNX model ONNX Runtime can run ({str(error).splitlines()[0]})") from None
        self.checkpoint = checkpoint_of_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self.native_size = int(self.checkpoint.metadata.get("render_size") or 256)

    def __call__(self, lightness: torch.Tensor) -> torch.Tensor:
        ab = self.session.run(None, {"lightness": lightness.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(ab)


def checkpoint_of_metadata(meta: dict, path: Path) -> Checkpoint:
    """The weightless Checkpoint (arch, model args, card) that ``chromafuse export`` writes into an ONNX file."""
    try:
        return Checkpoint(meta["arch"], json.loads(meta["model_args"]), {}, json.loads(meta["metadata"]))
    except (KeyError, ValueError):
        raise ValueError(f"{path}: not exported by chromafuse (no chromafuse metadata)") from None


def onnx_extra_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


def cached_onnx(weights: Path) -> Path:
    """An ONNX build of the checkpoint ``weights`` in the user's cache, made once (atomically, keyed by the
    file's hash, checked against torch like ``chromafuse export``); ValueError when it cannot be built."""
    import hashlib

    require_onnx("onnxruntime", "onnx", "onnxscript")
    key = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    target = cache_dir() / "onnx" / f"{Path(weights).stem}-{key}.onnx"
    if not target.exists():
        try:
            # the weights the torch backend loads (a run's last.ckpt: its raw ones, not its EMA)
            export_onnx(prepare_export(weights, target, ema=False), target, str(weights))
        except RuntimeError as error:  # the exporter's own failures
            raise ValueError(f"{weights}: could not be exported to ONNX ({str(error).splitlines()[0]})") from None
    return target
