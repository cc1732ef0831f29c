"""How predictable is a photo's overall tint (its mean ab) from the gray image at all? A linear probe.

``cast_error.py`` shows that most of a model's CIEDE2000 on a reference folder is the whole-photo tint. This
asks whether the tint can be read from the gray photo: it pools the model encoder's features (strides 8, 16
and 32, averaged over the image, plus the lightness mean and spread) for ``--count`` photos of the training
pool, fits a ridge regression from them to each photo's true mean a and b, and prints, per ridge strength, how
well the fit follows the truth on a fifth of those pool photos held back and on the reference folder, and the
reference folder's mean tint error beside that of the pool's constant mean tint. A probe no better than the
model means the tint the model misses is not in the features a colorizer sees.

    python benchmarks/tint_probe.py ../shared/data/train ../shared/data/val/bsd100 --count 3000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2lab

from chromafuse.color.lab import gray_rgb_from_l
from chromafuse.evaluation.runner import load_reference
from chromafuse.inference.colorizer import default_weights_path
from chromafuse.media.listing import list_images
from chromafuse.models.checkpoint import build_model, read_checkpoint
from chromafuse.models.efficientnet import rgb_to_backbone_input


@torch.no_grad()
def features_and_tint(encoder: torch.nn.Module, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled encoder features of the photo's gray version, and its true mean (a, b)."""
    lab = rgb2lab(rgb)
    lightness = torch.from_numpy(lab[..., 0].astype(np.float32))[None, None]
    maps = encoder(rgb_to_backbone_input(gray_rgb_from_l(lightness)))[2:]
    pooled = [m.mean((2, 3))[0].numpy() for m in maps] + [np.array([lab[..., 0].mean(), lab[..., 0].std()]) / 100.0]
    return np.concatenate(pooled), lab[..., 1:].mean((0, 1))


def probe_set(encoder: torch.nn.Module, files: list[Path], protocol: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [features_and_tint(encoder, load_reference(path, protocol)) for path in files]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and intercept of a ridge regression on standardised ``x`` (closed form)."""
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ (y - y.mean(0))), y.mean(0)


def correlations(pred: np.ndarray, truth: np.ndarray) -> str:
    return " ".join(f"{name} {np.corrcoef(pred[:, k], truth[:, k])[0, 1]:.2f}" for k, name in enumerate("ab"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pool", type=Path, help="folder of training photos (searched recursively)")
    parser.add_argument("references", type=Path)
    parser.add_argument("--count", type=int, default=3000, help="pool photos to fit on (a fifth held back)")
    parser.add_argument("--weights", type=Path, default=None, help="whose encoder; default: the bundled model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # beside a training run
    checkpoint = read_checkpoint(args.weights or default_weights_path())
    encoder = build_model(checkpoint).float().eval().encoder
    pool = list_images([args.pool])
    random.Random(args.seed).shuffle(pool)
    x, y = probe_set(encoder, pool[: args.count], "native")
    x_ref, y_ref = probe_set(encoder, list_images([args.references]), "256")
    mean, spread = x.mean(0), x.std(0) + 1e-6
    x, x_ref = (x - mean) / spread, (x_ref - mean) / spread
    held = len(x) // 5
    constant_error = np.hypot(*(y_ref - y.mean(0)).T).mean()
    print(
        f"{checkpoint.metadata.get('name', args.weights)}'s encoder; {len(x)} pool photos ({held} held back), {len(x_ref)} references"
    )
    print(
        f"references' mean tint: a {y_ref[:, 0].mean():+.2f} (spread {y_ref[:, 0].std():.2f}), b {y_ref[:, 1].mean():+.2f} ({y_ref[:, 1].std():.2f}); pool's: a {y[:, 0].mean():+.2f}, b {y[:, 1].mean():+.2f}"
    )
    for alpha in (10.0, 100.0, 1000.0, 10000.0):
        weights, intercept = ridge(x[held:], y[held:], alpha)
        pred_held, pred_ref = x[:held] @ weights + intercept, x_ref @ weights + intercept
        error = np.hypot(*(pred_ref - y_ref).T).mean()
        print(
            f"ridge {alpha:>7.0f}: pool held back: correlation {correlations(pred_held, y[:held])}; references: correlation "
            f"{correlations(pred_ref, y_ref)}, tint error {error:.2f} Lab units (the pool's constant mean tint: {constant_error:.2f})"
        )


if __name__ == "__main__":
    main()
