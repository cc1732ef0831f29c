"""Regenerate docs/gallery.png: gray | chromafuse | original for validation photos of different kinds
(people, a face, buildings and water, animals on grass, a reef, flowers, sea, bright clothes) and the
four photos in examples/ (grays of scikit-image's astronaut, cat, coffee and rocket, whose colour
originals come from ``skimage.data``), two per row.

    python docs/make_gallery.py                        # the bundled model, ../shared/data/val/bsd100
    python docs/make_gallery.py --weights RUN/best.ckpt --out /tmp/gallery.png
    python docs/make_gallery.py --saturation 1.2 --out /tmp/vivid.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from chromafuse import Colorizer
from chromafuse.evaluation.runner import gray_of

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ["157055", "189080", "102061", "253027", "210088", "86000", "300091", "229036"]
EXAMPLES = {
    "astronaut": "astronaut",
    "chelsea": "chelsea",
    "coffee": "coffee",
    "rocket": "rocket",
}  # examples/ name -> skimage.data
TILE_W, TILE_H, GAP = 240, 160, 4


def _tile(rgb: np.ndarray) -> np.ndarray:
    """Fit into TILE_W x TILE_H (aspect kept, centred on white)."""
    h, w = rgb.shape[:2]
    scale = min(TILE_W / w, TILE_H / h)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((TILE_H, TILE_W, 3), 255, np.uint8)
    top, left = (TILE_H - small.shape[0]) // 2, (TILE_W - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def _label(width: int, texts: list[str]) -> np.ndarray:
    """Column titles over both triples of a row."""
    strip = np.full((22, width, 3), 255, np.uint8)
    second = 3 * TILE_W + 2 * GAP + 4 * GAP
    for start in (0, second):
        for i, text in enumerate(texts):
            x = start + i * (TILE_W + GAP) + 6
            cv2.putText(strip, text, (x, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return strip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val" / "bsd100")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    parser.add_argument("--saturation", type=float, default=None, help="default: the weights' own")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, saturation=args.saturation)
    photos = [
        cv2.cvtColor(cv2.imread(str(args.val / f"{n}.jpg")), cv2.COLOR_BGR2RGB)
        for n in VALIDATION
        if (args.val / f"{n}.jpg").exists()
    ]
    photos += [getattr(skimage.data, name)() for name in EXAMPLES.values()]
    triples = []
    for rgb in photos:
        gray = gray_of(rgb)
        gap = np.full((TILE_H, GAP, 3), 255, np.uint8)
        triples.append(np.hstack([_tile(gray), gap, _tile(colorizer.colorize(gray)), gap, _tile(rgb)]))
    if len(triples) % 2:
        triples.append(np.full_like(triples[0], 255))
    rows = [np.hstack([a, np.full((TILE_H, 4 * GAP, 3), 255, np.uint8), b]) for a, b in zip(triples[::2], triples[1::2])]
    width = rows[0].shape[1]
    header = _label(width, ["gray", colorizer.name, "original"])
    sheet = np.vstack([header, *[np.vstack([row, np.full((GAP, width, 3), 255, np.uint8)]) for row in rows]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out}: {len(photos)} photos ({len(photos) - 4} validation, 4 examples), model {colorizer.name}")


if __name__ == "__main__":
    main()
