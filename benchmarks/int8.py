"""Static int8 quantisation of the bundled model's ONNX build (ONNX Runtime, QDQ, per-channel weights,
activations calibrated on photos from the training pool), timed against fp32 ONNX Runtime in the same run
(interleaved repeats), and written out so that ``chromafuse evaluate`` can score it.

    python benchmarks/int8.py ../shared/data/train --count 300 --out int8.onnx
    chromafuse evaluate ../shared/data/val/bsd100 --protocol 256 -w int8.onnx --backend onnx

Keep it only where it keeps quality (PSNR within 0.1 dB and colourfulness within 1.0 of fp32 on bsd100)
and is faster; otherwise the figures say why not."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
from backend_throughput import interleaved_rates  # the sibling script: python benchmarks/int8.py
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from chromafuse import Colorizer
from chromafuse.color.fullres import lightness_of, render_lightness
from chromafuse.inference.colorizer import default_weights_path
from chromafuse.inference.onnx_model import cached_onnx


class Photos(CalibrationDataReader):
    """The render-size lightness of ``paths``, one photo per calibration batch."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = iter(paths), size

    def get_next(self) -> dict | None:
        for path in self.paths:
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if gray is not None:
                small = render_lightness(lightness_of(gray), self.size)
                return {"lightness": small[None, None].astype(np.float32)}
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calibration", type=Path, help="a folder of photos (searched recursively)")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="minmax")
    parser.add_argument("--out", type=Path, default=Path("int8.onnx"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    fp32 = cached_onnx(default_weights_path())
    photos = sorted(p for p in args.calibration.rglob("*") if p.suffix.lower() in {".webp", ".jpg", ".jpeg", ".png"})
    photos = random.Random(0).sample(photos, min(args.count, len(photos)))
    size = Colorizer.load(fp32, backend="onnx").size
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}.get(
        args.method, CalibrationMethod.Percentile
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(
            str(prepared),
            str(args.out),
            Photos(photos, size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
        )
    model = onnx.load(str(args.out))
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.load(str(fp32), load_external_data=False).metadata_props)  # name, size, card
    onnx.save(model, str(args.out))
    print(f"calibrated on {len(photos)} photos ({args.method}) in {time.perf_counter() - start:.0f} s -> {args.out}")

    runs = {
        "onnxruntime fp32": Colorizer.load(fp32, backend="onnx"),
        "onnxruntime int8": Colorizer.load(args.out, backend="onnx"),
    }
    lightness = np.random.default_rng(0).uniform(0, 100, (args.batch, size, size)).astype(np.float32)
    real = np.stack([Photos([p], size).get_next()["lightness"][0, 0] for p in photos[: args.batch]])
    difference = np.abs(runs["onnxruntime int8"].predict_ab(real) - runs["onnxruntime fp32"].predict_ab(real))
    rates = interleaved_rates(runs, lightness, args.calls, args.repeats)
    base = statistics.median(rates["onnxruntime fp32"])
    print(
        f"render {size}, batch {args.batch}; int8 vs fp32 ab on {len(real)} photos: mean {difference.mean():.2f}, max {difference.max():.1f}"
    )
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:18s} {rate:6.1f} images/s  ({min(values):.1f}-{max(values):.1f})  {rate / base:.2f}x fp32")


if __name__ == "__main__":
    main()
