"""Training only: a patch discriminator for the generator's adversarial term (`--lambda-adv`).

Reconstruction losses reward the mean of what a mouth could look like, which is a soft mouth: the
shipped model keeps about a third of the footage's fine detail in the lower face (`detail_lower_face`
in `lipsync eval`). The discriminator judges overlapping patches of the lower face, real footage
against generated frames composited into it through the mask (so the upper face, which is the
footage's own, tells it nothing), and the generator is asked to fool it (hinge losses). Spectral
normalisation keeps it from overpowering a generator that starts well trained. It does not ship.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """(N, 3, S, S) crops in [-1, 1] -> (N, 1, S/16, S/16) realism logits, one per ~46 px patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        layers, width = [], 3
        for out in channels:
            layers += [spectral_norm(nn.Conv2d(width, out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            width = out
        layers.append(spectral_norm(nn.Conv2d(width, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net(crops)


def lower_face_composite(generated: torch.Tensor, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Generated windows (B, T, 3, S, S) pasted into the real ones through their masks (B, T, 1, S, S),
    as `lipsync dub` pastes them; flattened to (B*T, 3, S, S)."""
    return (generated * masks + frames * (1 - masks)).flatten(0, 1)


def generator_adversarial_loss(discriminator: PatchDiscriminator, fakes: torch.Tensor) -> torch.Tensor:
    return -discriminator(fakes).mean()


def discriminator_loss(discriminator: PatchDiscriminator, reals: torch.Tensor, fakes: torch.Tensor) -> torch.Tensor:
    """Hinge loss: real patches above +1, generated ones below -1."""
    return F.relu(1 - discriminator(reals)).mean() + F.relu(1 + discriminator(fakes.detach())).mean()
