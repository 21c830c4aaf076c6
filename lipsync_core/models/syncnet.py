"""SyncNet: does this mouth motion go with this audio? Two towers to normalized embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .encoders import MelTower
from .layers import ConvAct, EqualLinear


def lower_half(frames: torch.Tensor, width: int) -> torch.Tensor:
    """(..., 3, S, S) aligned crops in [-1, 1] -> their lower halves resized to (width/2, width)."""
    lead = frames.shape[:-3]
    s = frames.shape[-1]
    half = frames.reshape(-1, 3, s, s)[:, :, s // 2 :, :]
    half = F.interpolate(half, size=(width // 2, width), mode="bilinear", align_corners=False, antialias=True)
    return half.reshape(*lead, 3, width // 2, width)


class SyncNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        n = config.syncnet_frames
        w = config.syncnet_size
        layers, c, h = [ConvAct(3 * n, 32)], 32, w // 2
        for c_out in (64, 128, 256, 256):
            layers.append(ConvAct(c, c_out, stride=2))
            c, h = c_out, h // 2
        self.visual = nn.Sequential(*layers, nn.Flatten(), EqualLinear(c * h * 2 * h, config.embed_dim))
        self.audio = nn.Sequential(MelTower(config, config.embed_dim), EqualLinear(config.embed_dim, config.embed_dim))
        self.config = config

    def mouths(self, frames: torch.Tensor) -> torch.Tensor:
        """What the visual tower sees: (B, n, 3, S, S) aligned crops -> their lower halves, resized."""
        return lower_half(frames, self.config.syncnet_size)

    def embed_mouths(self, mouths: torch.Tensor) -> torch.Tensor:
        """mouths: (B, n, 3, h, w) from `mouths` -> (B, D) unit vectors."""
        return F.normalize(self.visual(mouths.flatten(1, 2)), dim=-1)

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, n, 3, S, S) consecutive aligned crops in [-1, 1] -> (B, D) unit vectors."""
        return self.embed_mouths(self.mouths(frames))

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, mel_window, n_mels) centred on the middle frame -> (B, D) unit vectors."""
        return F.normalize(self.audio(mel[:, None]), dim=-1)

    def similarity(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        return (self.embed_video(frames) * self.embed_audio(mel)).sum(-1)
