"""The model's forward pass per backend, side by side in one run (interleaved repeats): torch fp32,
torch bf16 (where the CPU has it), ONNX Runtime fp32 and, where the `openvino` extra is installed, OpenVINO on the same ONNX file (its CPU plugin's default precision: bf16 on AMX CPUs, fp32
elsewhere; LATENCY and THROUGHPUT hints) on the same weights, batch and render size.

    python benchmarks/backend_throughput.py                      # the bundled model, render 256, batch 8
    python benchmarks/backend_throughput.py --weights RUN/best.ckpt --batch 16 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chromafuse import Colorizer
from chromafuse.inference.colorizer import default_weights_path
from chromafuse.models.checkpoint import prepare_export
from chromafuse.models.device import cpu_supports_bf16
from chromafuse.models.onnx_export import export_onnx


def interleaved_rates(runs: dict, lightness: np.ndarray, calls: int, repeats: int) -> dict[str, list[float]]:
    """Images/s of each run's ``predict_ab`` on ``lightness``, after a warm-up, in interleaved rounds (so a
    slower spell of a shared machine hits every run alike)."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for colorizer in runs.values():
        colorizer.predict_ab(lightness)  # warm-up
    for _ in range(repeats):
        for name, colorizer in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                colorizer.predict_ab(lightness)
            rates[name].append(calls * len(lightness) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=default_weights_path())
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--calls", type=int, default=4, help="forward calls per timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = Path(scratch) / "model.onnx"
        _, difference = export_onnx(prepare_export(args.weights, onnx_path, render_size=args.size), onnx_path, str(args.weights))
        backends = {"torch fp32": Colorizer.load(args.weights, device="cpu", precision="fp32", size=args.size)}
        if cpu_supports_bf16():
            backends["torch bf16"] = Colorizer.load(args.weights, device="cpu", precision="bf16", size=args.size)
        backends["onnxruntime fp32"] = Colorizer.load(onnx_path, backend="onnx")  # auto would pick OpenVINO on AMX
        backends.update(_openvino_backends(onnx_path))
        lightness = np.random.default_rng(0).uniform(0, 100, (args.batch, args.size, args.size)).astype(np.float32)
        rates = interleaved_rates(backends, lightness, args.calls, args.repeats)
    print(
        f"{args.weights.name}, render {args.size}, batch {args.batch}, {torch.get_num_threads()} threads, "
        f"bf16 on this CPU: {cpu_supports_bf16()}; ONNX vs torch fp32 largest ab difference {difference:.2g}"
    )
    base = statistics.median(rates["torch fp32"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"{median:7.1f} images/s ({median / base:4.2f}x torch fp32)  {name}   runs: {', '.join(f'{v:.1f}' for v in values)}"
        )


class _OpenVino:
    """The compiled ONNX file behind the same predict_ab call (lightness in, ab out, render size)."""

    def __init__(self, compiled):
        self.compiled = compiled

    def predict_ab(self, lightness: np.ndarray) -> np.ndarray:
        return self.compiled(np.ascontiguousarray(lightness[:, None]))[0].transpose(0, 2, 3, 1)


def _openvino_backends(onnx_path: Path) -> dict:
    try:
        import openvino
    except ImportError:
        return {}
    core = openvino.Core()
    model = core.read_model(str(onnx_path))
    backends = {}
    for hint in ("LATENCY", "THROUGHPUT"):
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint})
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        backends[f"openvino {str(precision).lower()} {hint.lower()}"] = _OpenVino(compiled)
    return backends


if __name__ == "__main__":
    main()
