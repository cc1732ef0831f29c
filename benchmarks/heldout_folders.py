"""Models side by side on the campaign's whole held-out split, folder by folder (kinds of photos).

    python benchmarks/heldout_folders.py ../shared/data/train [--weights W1 W2 ...]
    python benchmarks/heldout_folders.py ../shared/data/train --link /tmp/heldout   # then:
    chromafuse evaluate /tmp/heldout --protocol 256 [-w W]

The held-out split is the pool's 2 % hash split (`train`'s validation photos; `--val-size 256` scores its
first 256). Here all of them are rendered at 256 px in fp32 torch and scored with the training
validation's metrics, then PSNR / CIEDE2000 / colourfulness are printed per source folder and over all.
``bundled`` names the shipped default.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch

from chromafuse.inference.colorizer import Colorizer
from chromafuse.training.data import build_cache, decode_squares, lab_batch, resize_batch, split_indices
from chromafuse.training.validation import batch_quality

SIZE = 256


def split_files(pool: Path) -> list[tuple[str, str]]:
    """(file, source folder) of every photo in the held-out split, as `train` splits the pool."""
    cache = build_cache([pool], 160)
    _, val_idx = split_indices(cache.files, 0.02)
    return [(cache.files[i], cache.group_names[cache.groups[i]]) for i in val_idx]


def heldout(pool: Path) -> tuple[torch.Tensor, list[str]]:
    files, folders = zip(*split_files(pool))
    return resize_batch(torch.from_numpy(decode_squares(list(files), SIZE)), SIZE), list(folders)


def link_split(pool: Path, folder: Path) -> int:
    """Symbolic links to the held-out photos in ``folder`` (named FOLDER__FILE), for `chromafuse evaluate`."""
    entries = split_files(pool)
    folder.mkdir(parents=True, exist_ok=True)
    for file, source_folder in entries:
        link = folder / f"{source_folder}__{Path(file).name}"
        if not link.exists():
            link.symlink_to(file)
    return len(entries)


def scores(weights: str, images: torch.Tensor) -> dict[str, torch.Tensor]:
    colorizer = Colorizer.load(None if weights == "bundled" else weights, "cpu", "fp32", SIZE, 1.0, "torch")
    parts = []
    for i in range(0, len(images), 16):
        lightness, true_ab = lab_batch(images[i : i + 16], torch.device("cpu"))
        pred = torch.from_numpy(colorizer.predict_ab(lightness[:, 0].numpy())).permute(0, 3, 1, 2)
        parts.append(batch_quality(lightness, pred, true_ab))
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", type=Path)
    parser.add_argument("--weights", nargs="+", default=["bundled"])
    parser.add_argument("--link", type=Path, default=None, help="only write links to the split's photos in this folder")
    args = parser.parse_args()
    if args.link:
        print(f"{link_split(args.pool, args.link)} held-out photos linked in {args.link}")
        return
    torch.set_grad_enabled(False)
    images, folders = heldout(args.pool)
    results = {weights: scores(weights, images) for weights in args.weights}
    members = defaultdict(list)
    for index, folder in enumerate(folders):
        members[folder].append(index)
    rows = sorted(members.items(), key=lambda item: -len(item[1])) + [("all", list(range(len(folders))))]
    print("PSNR / CIEDE2000 / colourfulness, render 256, fp32; columns: " + ", ".join(args.weights))
    for folder, indices in rows:
        index = torch.tensor(indices)
        cells = [
            f"{m['psnr'][index].mean():.2f} / {m['ciede2000'][index].mean():.2f} / {m['colorfulness'][index].mean():.1f}"
            for m in results.values()
        ]
        print(f"{folder:<22}{len(indices):>5}   " + "   ".join(f"{cell:>22}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
