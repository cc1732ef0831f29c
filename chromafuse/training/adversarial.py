"""The adversarial loss: a small PatchGAN discriminator, trained alongside the colorizer, that judges
whether the ab of each patch is real for its lightness.

The discriminator sees Lab (L / 100, ab / 110) and answers one score per 70x70-pixel patch (pix2pix's
PatchGAN, spectrally normalised, narrower for CPUs). Hinge losses: the discriminator minimises
relu(1 - D(real)) + relu(1 + D(fake)); the colorizer's 'gan' term is -D(fake). Its weights and optimiser
travel in ``last.ckpt``, so a resumed run continues exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..color.lab import AB_SCALE


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 32, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for i in range(layers):
            out = width * 2**i
            blocks += [spectral_norm(nn.Conv2d(channels, out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        blocks += [spectral_norm(nn.Conv2d(channels, channels, 4, 1, 1)), nn.LeakyReLU(0.2, inplace=True)]
        blocks.append(spectral_norm(nn.Conv2d(channels, 1, 4, 1, 1)))
        self.net = nn.Sequential(*blocks)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """L (B, 1, H, W) and ab (B, 2, H, W) in Lab units -> patch scores (B, 1, h, w)."""
        return self.net(torch.cat([lightness / 100.0, ab / AB_SCALE], dim=1))


class Adversary:
    """The discriminator with its own optimiser: ``generator_loss`` for the colorizer's step, ``step`` for its own."""

    def __init__(self, device: torch.device, lr: float = 2e-4, width: int = 32):
        self.net = PatchDiscriminator(width).to(device).requires_grad_(False)  # trainable only inside step()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))

    def generator_loss(self, lightness: torch.Tensor, pred_ab: torch.Tensor) -> torch.Tensor:
        """The colorizer's hinge term: gradients flow to ``pred_ab``, never into the discriminator."""
        return -self.net(lightness, pred_ab).float().mean()

    def step(self, lightness: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor, autocast) -> float:
        """One discriminator update on a batch; returns its hinge loss."""
        self.net.requires_grad_(True)
        with autocast:
            real = self.net(lightness, true_ab)
            fake = self.net(lightness, pred_ab.detach())
        loss = F.relu(1.0 - real.float()).mean() + F.relu(1.0 + fake.float()).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.net.requires_grad_(False)
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
