"""Film throughput: frames per second end to end at 640x480 and 1280x720, and the share of time outside the model.

    python benchmarks/video_throughput.py [--weights CKPT] [--seconds 4] [--fps 24] [--batch 8]
        [--sheet sheet.png [--photos A.jpg B.jpg ...]]

Makes each test film with ``video_clip.make_clip`` (a pan and zoom over one photo, a cut to a second,
a tone on the audio), colorizes it through ``Colorizer.colorize_video`` (decode, lightness, model,
temporal steadying, join, encode, mux) with the temporal filter on and off, and prints frames/s, the
model's seconds (``FileResult.model_seconds``) against the wall time, and the steadiness ratio of
the run (frame-to-frame ab change with the filter over without; the issue's bar is 0.40).
``--sheet`` also makes a 640x480 film of several photos (default: four of scikit-image's: the cat, the
rocket, the coffee cup, the astronaut; ``--photos`` for your own), one slow pan or zoom per shot,
colorizes it and writes a contact sheet (gray | colour, the first and last frame of every shot) to look at,
with the scene cuts the filter found.
Pause a training run on the same machine (``kill -STOP``) while this runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from skimage import data, io  # noqa: E402
from video_clip import decode_rgb, frame_to_frame_change, make_clip  # noqa: E402

from chromafuse import Colorizer  # noqa: E402

SIZES = [(640, 480), (1280, 720)]


def look(colorizer: Colorizer, work: Path, photos: list[Path], fps: int, batch: int, path: Path) -> None:
    """A film of several photos, colorized; a contact sheet of each shot's first and last frame."""
    rgb = [io.imread(p)[..., :3] for p in photos] if photos else [data.chelsea(), data.rocket(), data.coffee(), data.astronaut()]
    rgb = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in rgb]
    clip = make_clip(work / "look.mp4", (640, 480), tuple([2 * fps] * len(rgb)), fps, photos=rgb)
    result = colorizer.colorize_video(clip.path, work / "look-out.mp4", batch_size=batch)
    gray, colour = decode_rgb(clip.path), decode_rgb(work / "look-out.mp4")
    starts = [0, *clip.cuts]
    picks = [i for start, end in zip(starts, [*clip.cuts, len(colour)]) for i in (start, end - 1)]
    rows = [np.hstack([gray[i], colour[i]]) for i in picks]
    rows = [cv2.resize(r, (960, round(r.shape[0] * 960 / r.shape[1])), interpolation=cv2.INTER_AREA) for r in rows]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    steadiness = [
        np.mean(c) for c in np.split(np.asarray(frame_to_frame_change(colour, clip)), np.cumsum([2 * fps - 1] * (len(rgb) - 1)))
    ]
    print(f"look film: {len(rgb)} shots, cuts at frames {clip.cuts}; {result.notes[-1]}")
    print("mean frame-to-frame ab change per shot: " + ", ".join(f"{v:.2f}" for v in steadiness))
    print(f"contact sheet (gray | colour; first and last frame of each shot): {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each film (two thirds before the cut)")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--photos", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights)
    total = round(args.seconds * args.fps)
    frames = (total * 2 // 3, total - total * 2 // 3)
    print(f"model {colorizer.name}, {colorizer.device}, {colorizer.precision}, render {colorizer.size}px, batch {args.batch}")
    work = Path(tempfile.mkdtemp(prefix="chromafuse-video-bench-"))
    try:
        warm = make_clip(work / "warm.mp4", (320, 240), (8, 4), args.fps)
        colorizer.colorize_video(warm.path, work / "warm-out.mp4", batch_size=args.batch)
        for width, height in SIZES:
            clip = make_clip(work / f"film-{width}x{height}.mp4", (width, height), frames, args.fps)
            changes = {}
            for temporal in (True, False):
                out = work / f"out-{width}x{height}-{'on' if temporal else 'off'}.mp4"
                result = colorizer.colorize_video(clip.path, out, batch_size=args.batch, temporal=temporal)
                rgb = decode_rgb(out)
                changes[temporal] = float(np.mean(frame_to_frame_change(rgb, clip)))
                outside = 1 - result.model_seconds / result.seconds
                print(
                    f"{width}x{height}, {result.frames} frames, temporal {'on ' if temporal else 'off'}: "
                    f"{result.frames / result.seconds:6.2f} frames/s end to end, model {result.model_seconds:.2f} s "
                    f"of {result.seconds:.2f} s ({100 * outside:.0f}% of the time outside the model)"
                )
            print(f"{width}x{height}: steadiness (ab change with the filter / without) {changes[True] / changes[False]:.3f}")
        if args.sheet is not None:
            look(colorizer, work, args.photos, args.fps, args.batch, args.sheet)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
