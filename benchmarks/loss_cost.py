"""What each loss costs per training step: images/s of forward + losses + backward (+ the discriminator's
own step for 'gan') for several loss sets, measured in one run, interleaved, on the same batches.

    python benchmarks/loss_cost.py                       # fusion-s, 128 px, batch 16, this machine's auto precision
    python benchmarks/loss_cost.py --sets l1=1 l1=1,perceptual=0.1,gan=0.02 --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np
import skimage.data
import torch

from chromafuse.models import create_model
from chromafuse.models.device import autocast, resolve_device, resolve_precision, to_layout
from chromafuse.training.adversarial import Adversary
from chromafuse.training.config import parse_losses
from chromafuse.training.data import augment_batch, lab_batch
from chromafuse.training.losses import LossNetworks, total_loss
from chromafuse.training.perceptual import PerceptualLoss

DEFAULT_SETS = [
    "l1=1,ssim=0.1,colorfulness=0.1",
    "l1=1,ssim=0.1,colorfulness=0.1,perceptual=0.1",
    "l1=1,ssim=0.1,colorfulness=0.1,perceptual=0.1,gan=0.02",
]


def photos(size: int) -> torch.Tensor:
    import cv2

    names = ["astronaut", "chelsea", "coffee", "rocket"]
    return torch.from_numpy(
        np.stack([cv2.resize(getattr(skimage.data, n)(), (size, size), interpolation=cv2.INTER_AREA) for n in names])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="fusion-s")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per set and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS)
    args = parser.parse_args()

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model = create_model(args.arch).to(device)
    model.freeze_backbone(4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    amp = functools.partial(autocast, device, precision)
    networks = LossNetworks(PerceptualLoss().to(device), Adversary(device, lr=1e-5), amp)
    source = photos(int(args.size * 1.25))
    generator = torch.Generator().manual_seed(0)

    def step(terms) -> None:
        raw = source[torch.randint(0, len(source), (args.batch,), generator=generator)]
        lightness, ab = lab_batch(augment_batch(raw, args.size, generator, 0.35, 10.0), device)
        with amp():
            pred = model(to_layout(lightness, device, precision))
        loss, _ = total_loss(terms, pred, ab, lightness, networks=networks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if any(name == "gan" for name, _ in terms):
            networks.adversary.step(lightness, pred.float(), ab, amp())
        if device.type == "cuda":
            torch.cuda.synchronize()

    rates: dict[str, list[float]] = {spec: [] for spec in args.sets}
    for spec in args.sets:
        step(parse_losses(spec))  # warm-up
    for _ in range(args.repeats):
        for spec in args.sets:
            terms = parse_losses(spec)
            start = time.perf_counter()
            for _ in range(args.steps):
                step(terms)
            rates[spec].append(args.steps * args.batch / (time.perf_counter() - start))
    print(f"{args.arch}, {args.size} px, batch {args.batch}, {device} {precision}, {torch.get_num_threads()} threads")
    base = statistics.median(rates[args.sets[0]])
    for spec, values in rates.items():
        median = statistics.median(values)
        print(f"{median:7.1f} img/s ({median / base:4.2f}x the first)  {spec}   runs: {', '.join(f'{v:.1f}' for v in values)}")


if __name__ == "__main__":
    main()
