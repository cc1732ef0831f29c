"""Regenerate docs/guidance.png: one gray photo colorized automatically, with three colour hints (marked), and
with a reference photo of a different scene (shown small in the corner), beside the original.

    python docs/make_guidance_figure.py                          # the bundled guided model
    python docs/make_guidance_figure.py --weights RUN/best.ckpt --out /tmp/guidance.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from chromafuse import Colorizer
from chromafuse.evaluation.runner import gray_of
from chromafuse.guidance.hints import parse_hint_option, rgb_of_hex

ROOT = Path(__file__).resolve().parent.parent
# scikit-image's coffee: the table at the left turned green, the saucer blue, the wall behind yellow
HINTS = ["70,330:#3c8c46", "380,330:#2850b4", "500,60:#d2b428"]


def _marked(rgb: np.ndarray, hints) -> np.ndarray:
    out = np.ascontiguousarray(rgb.copy())
    for hint in hints:
        colour = rgb_of_hex(hint.color)
        cv2.circle(out, (int(hint.x), int(hint.y)), 11, (255, 255, 255), 3, cv2.LINE_AA)
        cv2.circle(out, (int(hint.x), int(hint.y)), 8, colour, -1, cv2.LINE_AA)
    return out


def _titled(rgb: np.ndarray, title: str) -> np.ndarray:
    strip = np.full((30, rgb.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, title, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (40, 40, 40), 1, cv2.LINE_AA)
    return np.concatenate([strip, rgb], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None, help="a guided checkpoint (default: the bundled one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "guidance.png")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, guided=args.weights is None)
    original = skimage.data.coffee()
    reference = skimage.data.astronaut()  # another scene: a blue-white suit, a flag, a red-brown face
    gray = gray_of(original)
    hints = [parse_hint_option(text) for text in HINTS]
    automatic = colorizer.colorize(gray)
    hinted = _marked(colorizer.colorize(gray, hints=hints), hints)
    referenced = colorizer.colorize(gray, reference=reference).copy()
    thumb = cv2.resize(reference, (120, 120), interpolation=cv2.INTER_AREA)
    referenced[-126:-6, -126:-6] = thumb
    cv2.rectangle(
        referenced,
        (referenced.shape[1] - 127, referenced.shape[0] - 127),
        (referenced.shape[1] - 6, referenced.shape[0] - 6),
        (255, 255, 255),
        2,
    )
    tiles = [
        _titled(automatic, "automatic"),
        _titled(hinted, "three hints"),
        _titled(referenced, "reference photo (corner)"),
        _titled(original, "original"),
    ]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([t if i == 0 else np.concatenate([gap, t], axis=1) for i, t in enumerate(tiles)], axis=1)
    scale = 1600 / row.shape[1]
    row = cv2.resize(row, (1600, round(row.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({colorizer.name})")


if __name__ == "__main__":
    main()
