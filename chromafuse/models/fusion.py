"""Image Chromatic Fusion, scaled for CPUs.

A pretrained EfficientNet-Lite0 encoder gives features at strides 2..32; a pixel decoder
upsamples them with skips into a per-pixel embedding at stride 4; learnable colour queries
attend to the decoder features at several scales (cross-attention, then self-attention);
the fusion module takes the dot product between queries and pixel embeddings and refines it
with convolutions, at stride 2, into ab.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..color.lab import denormalize_ab, gray_rgb_from_l, normalize_l
from .ab_bins import AbBins
from .efficientnet import EfficientNetLite0Encoder, rgb_to_backbone_input
from .hint_inputs import HintInputs, check_guidance
from .layers import ConvBlock, UpBlock, resize_to


def sine_position_encoding(height: int, width: int, dim: int, device, dtype) -> torch.Tensor:
    """(H*W, dim) 2D sine/cosine encoding; half the channels for y, half for x."""
    quarter = dim // 4
    freqs = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(10000.0) / quarter))
    ys = torch.arange(height, device=device, dtype=torch.float32)[:, None] * freqs
    xs = torch.arange(width, device=device, dtype=torch.float32)[:, None] * freqs
    y_enc = torch.cat([ys.sin(), ys.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    x_enc = torch.cat([xs.sin(), xs.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([y_enc, x_enc], dim=-1).reshape(height * width, 4 * quarter).to(dtype)


class ColourQueryLayer(nn.Module):
    """Queries attend to image features, then to each other, then pass an MLP (post-norm)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, queries: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor
    ) -> torch.Tensor:
        attended, _ = self.cross(queries + query_pos, memory + memory_pos, memory, need_weights=False)
        queries = self.norms[0](queries + self.dropout(attended))
        q = queries + query_pos
        attended, _ = self.self_attn(q, q, queries, need_weights=False)
        queries = self.norms[1](queries + self.dropout(attended))
        return self.norms[2](queries + self.dropout(self.mlp(queries)))


class FusionColorizer(nn.Module):
    def __init__(
        self,
        decoder_channels: tuple[int, ...] = (192, 128, 96, 64),
        num_queries: int = 64,
        query_dim: int = 128,
        heads: int = 4,
        colour_layers: int = 3,
        refine_channels: int = 48,
        dropout: float = 0.1,
        native_size: int = 256,
        pretrained_backbone: bool = True,
        head: str = "regress",
        bin_size: float = 10.0,
        temperature: float = 0.38,
        rebalance_mix: float = 0.5,
        guided: bool = False,
    ):
        super().__init__()
        self.native_size = native_size
        self.guided = bool(guided)
        self.encoder = EfficientNetLite0Encoder()
        self.backbone_pretrained = bool(pretrained_backbone) and self.encoder.load_imagenet_weights()
        c2, c4, c8, c16, c32 = EfficientNetLite0Encoder.channels
        d32, d16, d8, d4 = decoder_channels
        self.lateral32 = ConvBlock(c32, d32)
        self.up16 = UpBlock(d32, c16, d16)
        self.up8 = UpBlock(d16, c8, d8)
        self.up4 = UpBlock(d8, c4, d4, repeats=2)
        # Colour decoder: queries visit strides 32, 16, 8 in turn.
        self.memory_proj = nn.ModuleList([nn.Conv2d(c, query_dim, 1) for c in (d32, d16, d8)])
        self.scale_embed = nn.Parameter(torch.zeros(3, query_dim))
        self.query_feat = nn.Parameter(torch.randn(num_queries, query_dim) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(num_queries, query_dim) * 0.02)
        self.layers = nn.ModuleList([ColourQueryLayer(query_dim, heads, dropout) for _ in range(colour_layers)])
        self.query_to_embed = nn.Sequential(nn.LayerNorm(query_dim), nn.Linear(query_dim, d4))
        # Fusion: query-pixel similarity maps, refined at stride 2 with the stride-2 features and L,
        # into ab directly (regress, at stride 2) or into logits over ab bins (bins, at stride 4).
        self._frozen_blocks = -1
        if head not in ("regress", "bins"):
            raise ValueError(f"head must be 'regress' or 'bins', got {head!r}")
        self.bins = AbBins(bin_size, temperature, rebalance_mix) if head == "bins" else None
        layers = [
            ConvBlock(num_queries + c2 + 1, refine_channels),
            nn.Conv2d(refine_channels, refine_channels, 3, padding=1),
            nn.ReLU(inplace=True),
        ]
        if self.bins is not None:  # a distribution per pixel is costly: predict it at stride 4
            layers.append(nn.AvgPool2d(2))
        self.refine = nn.Sequential(*layers, nn.Conv2d(refine_channels, self.bins.count if self.bins else 2, 1))
        # Guided colorization (optional): local hint maps and a global hint feed every decoder stride,
        # the refinement at stride 2 and the colour queries, through layers that start at zero.
        self.hint_inputs = HintInputs((d32, d16, d8, d4, refine_channels), query_dim) if self.guided else None

    @property
    def bins_head_name(self) -> str:
        """State-dict prefix of the layer that outputs the ab (or bin logits)."""
        return f"refine.{len(self.refine) - 1}"

    @torch.no_grad()
    def start_from_prior(self, prior: torch.Tensor) -> None:
        """Bias a fresh bins head to predict the colour prior everywhere: the logits start at log p
        instead of uniform, which Adam's small steps would take thousands of steps to reach."""
        layer = self.refine[-1]
        layer.bias.copy_(torch.log(prior.clamp_min(1e-4)))
        layer.weight.mul_(0.1)

    def freeze_backbone(self, through_block: int) -> None:
        """Freeze the stem and blocks 0..through_block (-1: nothing, 15: the whole encoder)."""
        self._frozen_blocks = through_block
        for module in self._frozen_modules():
            module.requires_grad_(False)
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        if self._frozen_blocks < 0:
            return []
        enc = self.encoder
        return [enc._conv_stem, enc._bn0, *enc._blocks[: self._frozen_blocks + 1]]

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self

    def forward(
        self,
        lightness: torch.Tensor,
        hints: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        with_logits: bool = False,
    ):
        """ab in Lab units at the input's size; with ``with_logits`` (bins head) also the stride-4 bin logits.

        A guided model also reads ``hints`` (B, 3, H, W: a/110, b/110 and a mask at the input's size) and
        ``reference`` (B, REFERENCE_DIM global hints); either may be None (no hints). Other models refuse them."""
        check_guidance(hints, reference, lightness)
        guide = self.hint_inputs
        if guide is None and (hints is not None or reference is not None):
            raise ValueError("this model takes no hints; train one with --model-arg guided=true")
        if guide is not None:
            batch, _, height, width = lightness.shape
            if hints is None:
                hints = lightness.new_zeros(batch, 3, height, width)
            if reference is None:
                reference = lightness.new_zeros(batch, guide.global_mlp[0].in_features)
            query_term, feature_term = guide.global_terms(reference.to(lightness.dtype))
        f2, f4, f8, f16, f32 = self.encoder(rgb_to_backbone_input(gray_rgb_from_l(lightness)))
        p32 = self.lateral32(f32)
        if guide is not None:
            p32 = p32 + feature_term.to(p32.dtype) + guide.local_term(0, hints, p32)
        p16 = self.up16(p32, f16)
        if guide is not None:
            p16 = p16 + guide.local_term(1, hints, p16)
        p8 = self.up8(p16, f8)
        if guide is not None:
            p8 = p8 + guide.local_term(2, hints, p8)
        p4 = self.up4(p8, f4)
        if guide is not None:
            p4 = p4 + guide.local_term(3, hints, p4)

        batch = lightness.shape[0]
        queries = self.query_feat.unsqueeze(0).expand(batch, -1, -1)
        if guide is not None:
            queries = queries + query_term.to(queries.dtype)
        query_pos = self.query_pos.unsqueeze(0).expand(batch, -1, -1)
        scales = (p32, p16, p8)
        for index, layer in enumerate(self.layers):
            level = index % len(scales)
            feature = self.memory_proj[level](scales[level])
            h, w = feature.shape[-2:]
            memory = feature.flatten(2).transpose(1, 2)
            memory_pos = sine_position_encoding(h, w, memory.shape[-1], memory.device, memory.dtype) + self.scale_embed[level].to(
                memory.dtype
            )
            queries = layer(queries, query_pos, memory, memory_pos.unsqueeze(0))

        query_embed = self.query_to_embed(queries)
        similarity = torch.einsum("bqc,bchw->bqhw", query_embed, p4.to(query_embed.dtype))
        similarity = resize_to(similarity, f2)
        l_half = F.interpolate(normalize_l(lightness), size=f2.shape[-2:], mode="area")
        inputs = torch.cat([similarity, f2.to(similarity.dtype), l_half.to(similarity.dtype)], dim=1)
        features = self.refine[0](inputs)
        if guide is not None:
            features = features + guide.local_term(4, hints, features)
        features = self.refine[1:-1](features)
        if self.bins is None:
            ab = denormalize_ab(resize_to(self.refine[-1](features), lightness).float())
            return (ab, None) if with_logits else ab
        # Logits in float32: divided by a temperature below 1 and exponentiated, bf16's 8-bit mantissa is too coarse.
        with torch.autocast(features.device.type, enabled=False):
            logits = self.refine[-1](features.float())
            ab = resize_to(self.bins.decode(logits), lightness)
        return (ab, logits) if with_logits else ab
