"""SyncNet: does this mouth motion go with this audio? Two towers to normalized embeddings: a visual
tower on the mouth region of 5 consecutive aligned frames, an audio tower on the matching mel window."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .encoders import MelTower
from .layers import ConvAct, EqualLinear


def mouth_region(frames: torch.Tensor, width: int) -> torch.Tensor:
    """(..., 3, S, S) aligned crops in [-1, 1] -> the centre of their lower half (rows S/2..7S/8,
    columns S/4..3S/4: mouth, lips and chin), resized to (3/4 width, width).

    A plain lower half scaled to the tower's size would leave the lips a dozen pixels wide."""
    lead = frames.shape[:-3]
    s = frames.shape[-1]
    region = frames.reshape(-1, 3, s, s)[:, :, s // 2 : s * 7 // 8, s // 4 : s * 3 // 4]
    region = F.interpolate(region, size=(width * 3 // 4, width), mode="bilinear", align_corners=False, antialias=True)
    return region.reshape(*lead, 3, width * 3 // 4, width)


class SyncNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        n = config.syncnet_frames
        w = config.syncnet_size
        layers, c, h = [ConvAct(3 * n, 32)], 32, w * 3 // 4
        for c_out in (64, 128, 256, 256):
            layers.append(ConvAct(c, c_out, stride=2))
            c, h, w = c_out, (h + 1) // 2, (w + 1) // 2
        self.visual = nn.Sequential(*layers, nn.Flatten(), EqualLinear(c * h * w, config.embed_dim))
        self.audio = nn.Sequential(MelTower(config, config.embed_dim), EqualLinear(config.embed_dim, config.embed_dim))
        self.config = config

    def mouths(self, frames: torch.Tensor) -> torch.Tensor:
        """What the visual tower sees: (B, n, 3, S, S) aligned crops -> their mouth regions."""
        return mouth_region(frames, self.config.syncnet_size)

    def embed_mouths(self, mouths: torch.Tensor) -> torch.Tensor:
        """mouths: (B, n, 3, h, w) from `mouths` -> (B, D) unit vectors."""
        return F.normalize(self.visual(mouths.flatten(1, 2)), dim=-1)

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, n, 3, S, S) consecutive aligned crops in [-1, 1] -> (B, D) unit vectors."""
        return self.embed_mouths(self.mouths(frames))

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, mel_window, n_mels) centred on the middle frame -> (B, D) unit vectors."""
        return F.normalize(self.audio(mel[:, None]), dim=-1)

    def forward(self, mouths: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both towers in one call (the one a DistributedDataParallel wrapper makes): `embed_mouths(mouths)`,
        `embed_audio(mel)`."""
        return self.embed_mouths(mouths), self.embed_audio(mel)

    def similarity(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        return (self.embed_video(frames) * self.embed_audio(mel)).sum(-1)
