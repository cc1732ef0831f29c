"""How much of a model's CIEDE2000 is the photo's overall tint (its mean ab), on a reference folder scored as
``chromafuse evaluate --protocol 256`` scores it.

For each photo it prints nothing; at the end: the mean CIEDE2000 as evaluated, the mean CIEDE2000 once each
prediction's ab is shifted so that its mean equals the truth's (an oracle: what a model that got every
photo's tint right, and nothing else, would score), the mean size of the tint error, and how well the
predicted tints follow the true ones (correlation and spread of the per-photo mean a and b).

    python benchmarks/cast_error.py ../shared/data/val/bsd100
    python benchmarks/cast_error.py ../shared/data/val/bsd100 --weights RUN/best.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

from chromafuse import Colorizer
from chromafuse.color.fullres import lightness_of
from chromafuse.evaluation.runner import gray_of, load_reference
from chromafuse.media.listing import list_images


def tint_errors(colorizer: Colorizer, files: list[Path]) -> np.ndarray:
    """Per photo: CIEDE2000, CIEDE2000 with the true mean ab, true mean a, b, predicted mean a, b."""
    rows = []
    for path in files:
        ref = load_reference(path, "256")
        pred = colorizer.colorize_lightness([lightness_of(gray_of(ref))], 8)[0]
        true_lab, pred_lab = rgb2lab(ref), rgb2lab(pred)
        true_tint, pred_tint = true_lab[..., 1:].mean((0, 1)), pred_lab[..., 1:].mean((0, 1))
        shifted = pred_lab.copy()
        shifted[..., 1:] += true_tint - pred_tint
        shifted = rgb2lab(np.clip(lab2rgb(shifted), 0.0, 1.0))  # back through RGB, as a real output would be
        rows.append(
            (deltaE_ciede2000(true_lab, pred_lab).mean(), deltaE_ciede2000(true_lab, shifted).mean(), *true_tint, *pred_tint)
        )
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references", type=Path)
    parser.add_argument("--weights", type=Path, default=None, help="default: the bundled model")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, "cpu", "fp32", 256, 1.0, "torch")
    rows = tint_errors(colorizer, list_images([args.references]))
    true_a, true_b, pred_a, pred_b = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    print(f"{colorizer.name} on {args.references} ({len(rows)} photos, protocol 256)")
    print(f"CIEDE2000 {rows[:, 0].mean():.2f}; with each photo's true mean ab: {rows[:, 1].mean():.2f}")
    print(f"tint error |mean ab - true mean ab|: mean {np.hypot(true_a - pred_a, true_b - pred_b).mean():.2f} Lab units")
    print(
        f"mean a: true {true_a.mean():+.2f} (spread {true_a.std():.2f}), predicted {pred_a.mean():+.2f} ({pred_a.std():.2f}), correlation {np.corrcoef(true_a, pred_a)[0, 1]:.2f}"
    )
    print(
        f"mean b: true {true_b.mean():+.2f} (spread {true_b.std():.2f}), predicted {pred_b.mean():+.2f} ({pred_b.std():.2f}), correlation {np.corrcoef(true_b, pred_b)[0, 1]:.2f}"
    )


if __name__ == "__main__":
    main()
