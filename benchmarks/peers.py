"""chromafuse beside the architectures people would otherwise run, built from their papers with random
weights (speed does not depend on the weights), in one run on this machine:

- DDColor-tiny (Kang et al., ICCV 2023): ConvNeXt-T encoder (depths 3-3-9-3, widths 96-768), a pixel decoder
  with skips up to a full-resolution 256-d embedding, a colour decoder of 100 queries over 3 scales (9 layers
  of cross-attention, self-attention and an MLP), and the fusion of query-pixel similarities into ab;
- ECCV16 (Zhang et al., "Colorful Image Colorization"): the VGG-style network with dilated convolutions,
  313 ab-bin logits at stride 4 decoded by the annealed mean.

Same render size and batch for all, the best precision for each on this CPU (``auto``), chromafuse through its
torch and ONNX Runtime paths. Prints images/s, one 1024x768 photo end to end (the same Colorizer pipeline
around each model), parameters, GFLOPs per image, and the ratios.

    python benchmarks/peers.py [--size 256] [--batch 8] [--seconds 20] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from chromafuse import Colorizer
from chromafuse.color.lab import gray_rgb_from_l
from chromafuse.models.checkpoint import Checkpoint
from chromafuse.models.device import resolve_device, resolve_precision

# ---- DDColor-tiny ---------------------------------------------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        y = self.mlp(self.norm(self.dw(x).permute(0, 2, 3, 1))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtT(nn.Module):
    dims, depths = (96, 192, 384, 768), (3, 3, 9, 3)

    def __init__(self):
        super().__init__()
        self.downs = nn.ModuleList([nn.Sequential(nn.Conv2d(3, 96, 4, stride=4), LayerNorm2d(96))])
        for a, b in zip(self.dims[:-1], self.dims[1:]):
            self.downs.append(nn.Sequential(LayerNorm2d(a), nn.Conv2d(a, b, 2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*[ConvNeXtBlock(d) for _ in range(n)]) for d, n in zip(self.dims, self.depths))

    def forward(self, x):
        features = []
        for down, stage in zip(self.downs, self.stages):
            x = stage(down(x))
            features.append(x)
        return features  # strides 4, 8, 16, 32


class Up(nn.Module):
    """DDColor's pixel-decoder step: pixel shuffle x2, concatenate the skip, convolve."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.expand = nn.Conv2d(c_in, c_in * 2, 1)
        self.fuse = nn.Sequential(
            nn.Conv2d(c_in // 2 + c_skip, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
        )

    def forward(self, x, skip):
        x = F.pixel_shuffle(self.expand(x), 2)
        return self.fuse(torch.cat([x, skip], 1))


class QueryLayer(nn.Module):
    def __init__(self, dim: int = 256, heads: int = 8):
        super().__init__()
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2048), nn.ReLU(inplace=True), nn.Linear(2048, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, q, memory):
        q = self.norms[0](q + self.cross(q, memory, memory, need_weights=False)[0])
        q = self.norms[1](q + self.self_attn(q, q, q, need_weights=False)[0])
        return self.norms[2](q + self.mlp(q))


class DDColorTiny(nn.Module):
    def __init__(self, queries: int = 100, dim: int = 256, layers: int = 9):
        super().__init__()
        self.encoder = ConvNeXtT()
        self.up16, self.up8, self.up4 = Up(768, 384, 512), Up(512, 192, 512), Up(512, 96, 256)
        self.to_full = nn.Sequential(nn.Conv2d(256, 256 * 16, 1), nn.PixelShuffle(4))  # stride 4 -> full size
        self.proj = nn.ModuleList([nn.Conv2d(c, dim, 1) for c in (512, 512, 256)])
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.layers = nn.ModuleList(QueryLayer(dim) for _ in range(layers))
        self.fusion = nn.Conv2d(queries + 3, 2, 1)

    def forward(self, lightness):
        rgb = gray_rgb_from_l(lightness)
        f4, f8, f16, f32 = self.encoder(rgb)
        p16 = self.up16(f32, f16)
        p8 = self.up8(p16, f8)
        p4 = self.up4(p8, f4)
        scales = [proj(p).flatten(2).transpose(1, 2) for proj, p in zip(self.proj, (p16, p8, p4))]
        q = self.queries.unsqueeze(0).expand(lightness.shape[0], -1, -1)
        for index, layer in enumerate(self.layers):
            q = layer(q, scales[index % 3])
        embedding = self.to_full(p4)
        similarity = torch.einsum("bqc,bchw->bqhw", q, embedding)
        return self.fusion(torch.cat([similarity, rgb.to(similarity.dtype)], 1)).float() * 110.0


# ---- ECCV16 ---------------------------------------------------------------------------------------


def _block(c_in: int, c_out: int, n: int, stride_last: int = 1, dilation: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n):
        stride = stride_last if i == n - 1 else 1
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, stride, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    return [*layers, nn.BatchNorm2d(c_out)]


class ECCV16(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            *_block(1, 64, 2, 2),
            *_block(64, 128, 2, 2),
            *_block(128, 256, 3, 2),
            *_block(256, 512, 3),
            *_block(512, 512, 3, dilation=2),
            *_block(512, 512, 3, dilation=2),
            *_block(512, 512, 3),
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *_block(256, 256, 2)[:-1],
            nn.Conv2d(256, 313, 1),
        )
        grid = torch.linspace(-110, 110, 18)
        a, b = torch.meshgrid(grid, grid, indexing="ij")
        self.register_buffer("centres", torch.stack([a.flatten(), b.flatten()], 1)[:313])  # 313 ab bins

    def forward(self, lightness):
        logits = self.net((lightness - 50.0) / 100.0).float()
        probs = torch.softmax(logits / 0.38, dim=1)  # the annealed mean, T = 0.38
        ab = torch.einsum("bkhw,kc->bchw", probs, self.centres)
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)


# ---- timing ---------------------------------------------------------------------------------------


def images_per_s(colorizer: Colorizer, size: int, batch: int, seconds: float) -> float:
    lightness = np.random.default_rng(0).uniform(0, 100, (batch, size, size)).astype(np.float32)
    colorizer.predict_ab(lightness)  # warm up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        colorizer.predict_ab(lightness)
        count += batch
    return count / (time.perf_counter() - started)


def one_photo_s(colorizer: Colorizer, repeats: int = 3) -> float:
    photo = np.random.default_rng(1).integers(0, 255, (768, 1024), dtype=np.uint8)
    colorizer.colorize(photo)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        colorizer.colorize(photo)
        times.append(time.perf_counter() - started)
    return min(times)


def gflops(model: nn.Module, size: int, device: torch.device) -> float:
    model.requires_grad_(False)  # inference only (the counter's module tracker trips on no_grad with trainable weights)
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 1, size, size, device=device) * 100)
    return counter.get_total_flops() / 1e9 / 2  # multiply-adds, as papers count them


def wrap(model: nn.Module, name: str, device: torch.device, size: int) -> Colorizer:
    precision = resolve_precision("auto", device)
    model = model.to(device).eval()
    return Colorizer(model, Checkpoint(name, {}, {}, {"name": name}), Path(name), device, precision, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    runs = [("chromafuse (torch)", Colorizer.load(device=args.device, backend="torch"))]
    if device.type == "cpu":
        try:
            runs.append(("chromafuse (ONNX Runtime)", Colorizer.load(device="cpu", backend="onnx")))
        except (ValueError, ImportError) as error:
            print(f"ONNX Runtime path left out: {error}")
    runs += [
        ("DDColor-tiny", wrap(DDColorTiny(), "ddcolor-tiny", device, args.size)),
        ("ECCV16", wrap(ECCV16(), "eccv16", device, args.size)),
    ]
    print(
        f"device {device}, render {args.size}, batch {args.batch}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    rows = []
    for label, colorizer in runs:
        torch_model = colorizer.model if isinstance(colorizer.model, nn.Module) else runs[0][1].model
        params = sum(p.numel() for p in torch_model.parameters()) / 1e6
        flops = gflops(torch_model, args.size, device)
        rate = images_per_s(colorizer, args.size, args.batch, args.seconds)
        photo = one_photo_s(colorizer)
        rows.append((label, colorizer.precision, rate, photo, params, flops))
        print(f"{label}: {rate:.2f} images/s ({colorizer.precision}), 1024x768 in {photo * 1000:.0f} ms", flush=True)
    best = max(rows[:2] if len(rows) > 3 else rows[:1], key=lambda r: r[2])
    print(f"\n| model | precision | images/s | 1024x768 end to end | params (M) | GMACs / image | {best[0]} is |")
    print("|---|---|---|---|---|---|---|")
    for label, precision, rate, photo, params, flops in rows:
        print(
            f"| {label} | {precision} | {rate:.2f} | {photo * 1000:.0f} ms | {params:.2f} | {flops:.2f} | {best[2] / rate:.2f}x |"
        )


if __name__ == "__main__":
    main()
