"""How a decode-time chroma curve moves a model along (or off) its vividness/accuracy trade-off.

    python benchmarks/chroma_curve.py ../shared/data/train ../shared/data/val/bsd100 [--weights W]

Predicts ab once per photo (render 256) on the campaign's held-out split of the pool (256 photos of the 2 %
hash split, as `train --val-size 256` picks and scores them) and on a validation folder at
protocol 256, then scores, for each curve, PSNR / CIEDE2000 / colourfulness and the target score with the
training validation's torch metrics. Curves: a uniform gain s (``--saturation``) and a chroma power
c' = c * clip((c / c0) ** gamma, 1/limit, limit), which boosts strong (confident) chroma more than faint,
and a spread gain ab' = t * mean + g * (ab - mean) around each photo's mean ab, which makes the colours
within a photo differ more (colourfulness is mostly that spread) without pushing its overall tint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chromafuse.evaluation.runner import load_reference  # noqa: E402
from chromafuse.inference.colorizer import Colorizer  # noqa: E402
from chromafuse.media.listing import list_images  # noqa: E402
from chromafuse.training.data import (  # noqa: E402
    build_cache,
    decode_squares,
    lab_batch,
    resize_batch,
    split_indices,
    validation_sample,
)
from chromafuse.training.validation import batch_quality, gray_baseline, target_score  # noqa: E402

SIZE = 256


def heldout_photos(pool: Path, count: int, how: str) -> np.ndarray:
    cache = build_cache([pool], 160)
    _, val_idx = split_indices(cache.files, 0.02)
    return decode_squares([cache.files[i] for i in validation_sample(cache.files, val_idx, count, how)], SIZE)


def folder_photos(folder: Path) -> np.ndarray:
    """The folder's photos as `evaluate --protocol 256` loads its references."""
    return np.stack([load_reference(path, "256") for path in list_images([folder])])


def predict(colorizer: Colorizer, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lightness, true_ab = lab_batch(images, torch.device("cpu"))
    preds = [
        torch.from_numpy(colorizer.predict_ab(lightness[i : i + 16, 0].numpy())).permute(0, 3, 1, 2)
        for i in range(0, len(images), 16)
    ]
    return lightness, torch.cat(preds), true_ab


def chroma_power(ab: torch.Tensor, gamma: float, c0: float, limit: float) -> torch.Tensor:
    chroma = ab.norm(dim=1, keepdim=True).clamp(min=1e-3)
    return ab * (chroma / c0).pow(gamma).clamp(1.0 / limit, limit)


def spread_gain(ab: torch.Tensor, gain: float, tint: float) -> torch.Tensor:
    mean = ab.mean(dim=(2, 3), keepdim=True)
    return tint * mean + gain * (ab - mean)


def score(lightness, pred, true, baseline) -> dict:
    parts = [batch_quality(lightness[i : i + 32], pred[i : i + 32], true[i : i + 32]) for i in range(0, len(pred), 32)]
    metrics = {k: float(torch.cat([p[k] for p in parts]).mean()) for k in parts[0]}
    metrics["target"] = target_score(metrics, baseline)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", type=Path)
    parser.add_argument("val", type=Path)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--count", type=int, default=256, help="held-out photos scored (0: the validation folder only)")
    parser.add_argument(
        "--val-sample", default="spread", help="which held-out photos, as train --val-sample picks them (spread or first)"
    )
    parser.add_argument("--gains", type=float, nargs="*", default=[1.0, 1.1, 1.2])
    parser.add_argument("--gammas", type=float, nargs="*", default=[0.1, 0.2, 0.3])
    parser.add_argument("--c0", type=float, nargs="*", default=[10.0, 15.0, 20.0])
    parser.add_argument("--limit", type=float, default=1.6)
    parser.add_argument("--spreads", type=float, nargs="*", default=[1.2, 1.3, 1.4])
    parser.add_argument("--tints", type=float, nargs="*", default=[1.0])
    parser.add_argument(
        "--precision", default="auto", help="the colorizer's precision (auto, fp32, bf16); the card's rows are fp32"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    colorizer = Colorizer.load(args.weights, "cpu", args.precision, SIZE, 1.0, "torch")
    sets = {"held-out": heldout_photos(args.pool, args.count, args.val_sample)} if args.count > 0 else {}
    sets[args.val.name] = folder_photos(args.val)
    images = {name: resize_batch(torch.from_numpy(photos), SIZE) for name, photos in sets.items()}  # (B, 3, S, S) in [0, 1]
    data = {name: (predict(colorizer, batch), gray_baseline(batch)) for name, batch in images.items()}
    curves = [(f"gain {s}", lambda ab, s=s: ab * s) for s in args.gains]
    curves += [
        (f"power g{g} c0 {c0}", lambda ab, g=g, c0=c0: chroma_power(ab, g, c0, args.limit)) for g in args.gammas for c0 in args.c0
    ]
    curves += [(f"spread {g} tint {t}", lambda ab, g=g, t=t: spread_gain(ab, g, t)) for g in args.spreads for t in args.tints]
    print(f"weights: {args.weights or 'bundled'} ({args.precision}); figures: PSNR / CIEDE2000 / colourfulness / target score")
    print("curve".ljust(24) + "".join(name.ljust(34) for name in data))
    for label, curve in curves:
        row = label.ljust(24)
        for (lightness, pred, true), baseline in data.values():
            m = score(lightness, curve(pred), true, baseline)
            row += f"{m['psnr']:.2f} / {m['ciede2000']:.2f} / {m['colorfulness']:.1f} / {m['target']:.3f}".ljust(34)
        print(row, flush=True)


if __name__ == "__main__":
    main()
