"""End-to-end colorize throughput against model-forward-only throughput, same render size and batch.

    python benchmarks/colorize_throughput.py [--weights CKPT] [--count 200] [--batch 8] [--size N] [--backend torch]

Generates a folder of grayscale JPEGs of mixed sizes (320x240 .. 1024x768), runs the real
`colorize` pipeline on it (decode ahead, batch, write behind), then times the model alone on
batches of the same shape, and prints both with their ratio. Also times one 1024x768 photo, and
each stage outside the model on one core (decode, lightness, join, encode): on a machine whose
cores the model already fills, those costs add to the model's, which bounds the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from chromafuse import Colorizer
from chromafuse.color.fullres import join_lab, lightness_of, render_lightness, upsample_ab
from chromafuse.inference import ColorizeOptions, run_colorize
from chromafuse.media.images import encode_image, read_image

SIZES = [(320, 240), (640, 480), (800, 600), (1024, 768), (480, 640), (512, 512)]


def make_photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        w, h = SIZES[i % len(SIZES)]
        y, x = np.mgrid[0:h, 0:w]
        image = (127 + 60 * np.sin(x / (17 + i % 7)) * np.cos(y / 23) + rng.normal(0, 12, (h, w))).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo{i:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def forward_only(colorizer: Colorizer, batch: int, batches: int) -> float:
    small = np.random.default_rng(0).uniform(0, 100, (batch, colorizer.size, colorizer.size)).astype(np.float32)
    colorizer.predict_ab(small)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        colorizer.predict_ab(small)
    return batch * batches / (time.perf_counter() - start)


def stage_seconds(colorizer: Colorizer, files: list[Path], ext: str) -> dict[str, float]:
    """Mean seconds per photo of each stage outside the model, one thread."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    totals = dict.fromkeys(["decode", "lightness and resize", "upsample and join", "encode"], 0.0)
    ab_small = np.zeros((colorizer.size, colorizer.size, 2), np.float32)
    try:
        for path in files:
            marks = [time.perf_counter()]
            image = read_image(path, 10**9)
            marks.append(time.perf_counter())
            lightness = lightness_of(image.pixels)
            render_lightness(lightness, colorizer.size)
            marks.append(time.perf_counter())
            rgb = join_lab(lightness, upsample_ab(ab_small, *lightness.shape), image.bit_depth)
            marks.append(time.perf_counter())
            encode_image(rgb, None, f".{ext}", 95)
            marks.append(time.perf_counter())
            for key, start, end in zip(totals, marks, marks[1:]):
                totals[key] += end - start
    finally:
        cv2.setNumThreads(threads)
    return {key: value / len(files) for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--ext", default="jpg")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="auto", help="auto, torch, onnx or openvino, as colorize --backend")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, size=args.size, backend=args.backend)
    work = Path(tempfile.mkdtemp(prefix="chromafuse-bench-"))
    try:
        (work / "in").mkdir()
        make_photos(work / "in", args.count)
        options = ColorizeOptions(batch_size=args.batch, ext=args.ext, workers=args.workers)
        single = work / "in" / "photo0003.jpg"  # 1024x768
        run_colorize(colorizer, [str(single)], work / "warm", options)
        start = time.perf_counter()
        run_colorize(colorizer, [str(single)], work / "one", options)
        one_photo = time.perf_counter() - start
        summary = run_colorize(colorizer, [str(work / "in")], work / "out", options)
        assert summary.count("done") == args.count, [r.reason for r in summary.results if r.status != "done"][:3]
        end_to_end = summary.images_per_s
        forward = forward_only(colorizer, args.batch, max(4, args.count // args.batch // 2))
        stages = stage_seconds(colorizer, sorted((work / "in").iterdir()), args.ext)
    finally:
        shutil.rmtree(work)
    print(
        f"model {colorizer.name} ({colorizer.weights.name}), {colorizer.device}, {colorizer.backend} {colorizer.precision}, render {colorizer.size}px, batch {args.batch}"
    )
    print(f"one 1024x768 photo end to end (decode, model, join, encode, write): {one_photo:.3f} s")
    print(f"end to end over {args.count} mixed-size photos: {end_to_end:.2f} images/s")
    print(f"model forward only, same render size and batch: {forward:.2f} images/s")
    print(f"end-to-end / forward-only: {100 * end_to_end / forward:.0f}%")
    print("per photo, one core: " + ", ".join(f"{name} {1000 * seconds:.1f} ms" for name, seconds in stages.items()))
    io_only = stages["decode"] + stages["encode"]
    print(
        f"model {1000 / forward:.1f} ms per photo on all cores; if stage costs add to it: ceiling "
        f"{100 / forward / (1 / forward + sum(stages.values())):.0f}% of forward-only, "
        f"{100 / forward / (1 / forward + io_only):.0f}% with decode and encode alone"
    )


if __name__ == "__main__":
    main()
