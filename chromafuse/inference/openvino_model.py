"""An ONNX file (``chromafuse export`` or a checkpoint's cached build) compiled by OpenVINO for the CPU.

On CPUs with AMX-BF16, OpenVINO's CPU plugin runs the graph in bf16 on the AMX tiles: the bundled model ran
2.4x torch bf16 and 2.5x ONNX Runtime there (``benchmarks/backend_throughput.py``). Without AMX it was at
best 1.1x ONNX Runtime, so ``auto`` picks it on AMX CPUs only (see ``Colorizer.load``)."""

from __future__ import annotations

import importlib.util
import queue
from pathlib import Path

import numpy as np
import torch

from .onnx_model import checkpoint_of_metadata

OPENVINO_EXTRA = 'pip install "chromafuse[openvino]"'
PRECISIONS = {"auto": None, "fp32": "f32", "bf16": "bf16"}  # auto: the plugin's choice (bf16 where AMX is)


def openvino_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "onnx"))


class OpenVinoModel:
    def __init__(self, path: Path, precision: str = "auto", threads: int | None = None):
        if not openvino_installed():
            raise ValueError(f"--backend openvino needs the openvino and onnx packages: {OPENVINO_EXTRA}")
        if precision not in PRECISIONS:
            raise ValueError(f"{path}: OpenVINO runs in {', '.join(PRECISIONS)} here (got --precision {precision})")
        import onnx
        import openvino

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as error:  # onnx raises DecodeError and others for files that are not ONNX
            raise ValueError(f"{path}: not an ONNX model ({str(error).splitlines()[0]})") from None
        self.checkpoint = checkpoint_of_metadata({p.key: p.value for p in proto.metadata_props}, path)
        self.native_size = int(self.checkpoint.metadata.get("render_size") or 256)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or torch.get_num_threads() or 1}
        if PRECISIONS[precision]:
            config["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        core = openvino.Core()
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except RuntimeError as error:
            raise ValueError(f"{path}: OpenVINO cannot compile it ({str(error).splitlines()[0]})") from None
        chosen = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()  # "<Type: 'bfloat16'>"
        self.precision = "bf16" if "bf" in chosen else "fp32"

        # One infer request per concurrent call: ``compiled(batch)`` reuses a single request, so two threads
        # (serve's page and its API, say) would read each other's outputs. Requests are reused once returned.
        self._idle_requests: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, lightness: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(lightness.detach().float().cpu().numpy())
        try:
            request = self._idle_requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            ab = np.array(request.infer(batch)[0], dtype=np.float32)  # a copy: the request's buffers are reused
        finally:
            self._idle_requests.put(request)
        return torch.from_numpy(ab)
