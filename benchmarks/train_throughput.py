"""Training throughput (images/s, forward + backward + AdamW step) per architecture, precision and size.

    python benchmarks/train_throughput.py [--sizes 128 256] [--batch 16] [--steps 4]
    python benchmarks/train_throughput.py --archs fusion-s --precisions fp32 --sizes 128 --freeze 4 10 15

Random L inputs; the fusion models freeze backbone blocks 0..4 as `chromafuse train` does by default
(`--freeze N ...` compares other depths, as `train --freeze-backbone N`), laid out as `train` lays them out
(`--layouts contiguous channels_last` compares the two memory layouts).
"""

from __future__ import annotations

import argparse
import time

import torch

from chromafuse.models import create_model, list_models
from chromafuse.models.device import autocast, resolve_precision, uses_channels_last


def throughput(arch: str, precision: str, size: int, batch: int, steps: int, freeze: int = 4, layout: str = "auto") -> float:
    torch.manual_seed(0)
    model = create_model(arch, **({"pretrained_backbone": False} if arch.startswith("fusion") else {}))
    if hasattr(model, "freeze_backbone"):
        model.freeze_backbone(freeze)
    channels_last = uses_channels_last(torch.device("cpu"), precision) if layout == "auto" else layout == "channels_last"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    lightness = torch.rand(batch, 1, size, size) * 100
    target = torch.randn(batch, 2, size, size) * 20
    if channels_last:
        lightness = lightness.contiguous(memory_format=torch.channels_last)
    device = torch.device("cpu")
    for step in range(steps + 1):  # the first step warms up and is not timed
        if step == 1:
            start = time.perf_counter()
        with autocast(device, precision):
            pred = model(lightness)
        loss = torch.nn.functional.huber_loss(pred.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--archs", nargs="+", default=list_models())
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--freeze", type=int, nargs="+", default=[4], help="backbone blocks frozen 0..N (fusion models)")
    parser.add_argument(
        "--layouts", nargs="+", default=["auto"], choices=["auto", "contiguous", "channels_last"], help="auto: as train lays out"
    )
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"auto precision on this CPU: {resolve_precision('auto', torch.device('cpu'))}"
    )
    header = f"{'arch':10s} {'precision':9s} {'frozen':>6s} {'layout':13s} "
    print(header + " ".join(f"{s:>8d}px" for s in args.sizes) + "   (images/s)")
    for arch in args.archs:
        depths = args.freeze if arch.startswith("fusion") else [None]
        for precision in args.precisions:
            for freeze in depths:
                for layout in args.layouts:
                    figures = [throughput(arch, precision, size, args.batch, args.steps, freeze, layout) for size in args.sizes]
                    label = "-" if freeze is None else f"0..{freeze}"
                    row = f"{arch:10s} {precision:9s} {label:>6s} {layout:13s} "
                    print(row + " ".join(f"{f:10.1f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()
