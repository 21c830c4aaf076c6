"""The three encoders: E_face (masked frame -> features per resolution), E_ref (reference -> w_ref),
E_aud (per-frame mel window -> a_t)."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import ConvAct, EqualLinear


class FaceEncoder(nn.Module):
    """E_face: the masked crop, its mask and the reference crop -> one feature map per decoder resolution.

    The reference is given to E_face as well as to E_ref: trained from scratch (no pretrained StyleGAN
    prior here), a spatial view of the actor's own lower face is what lets the decoder keep teeth,
    beard and skin detail instead of inventing them from a global code.
    """

    IN_CHANNELS = 7  # masked RGB, mask, reference RGB
    FOOTAGE_CHANNELS = 4  # the renderer's warped frame of the actor: RGB, and where it holds pixels

    def __init__(self, config: ModelConfig):
        super().__init__()
        resolutions = config.resolutions[::-1]  # size .. 4
        ch = config.channels
        self.stem = ConvAct(self.IN_CHANNELS + (self.FOOTAGE_CHANNELS if config.footage else 0), ch[resolutions[0]])
        self.refine = nn.ModuleDict({str(r): ConvAct(ch[r], ch[r]) for r in resolutions})
        self.down = nn.ModuleDict(
            {str(r): ConvAct(ch[r], ch[r // 2], stride=2) for r in resolutions[:-1]}
        )
        self.resolutions = resolutions

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        features = {}
        h = self.stem(x)
        for r in self.resolutions:
            h = self.refine[str(r)](h)
            features[r] = h
            if str(r) in self.down:
                h = self.down[str(r)](h)
        return features


def _codes_head(in_dim: int, config: ModelConfig) -> EqualLinear:
    return EqualLinear(in_dim, config.n_codes * config.w_dim)


class ReferenceEncoder(nn.Module):
    """E_ref: the reference crop -> w_ref of shape (2L, C)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        ch = config.channels
        layers, r = [ConvAct(3, ch[config.size // 2], stride=2)], config.size // 2
        while r > 4:
            layers.append(ConvAct(ch[r], ch[r // 2], stride=2))
            r //= 2
        # A 1x1 squeeze before flattening keeps the codes head (4x4 spatial -> 2L x C) small.
        self.trunk = nn.Sequential(*layers, ConvAct(ch[4], 32, kernel=1), nn.Flatten())
        self.head = _codes_head(32 * 16, config)
        self.config = config

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(ref)).view(-1, self.config.n_codes, self.config.w_dim)


class MelTower(nn.Sequential):
    """Conv tower over a (mel_window x n_mels) log-mel patch -> a flat feature of `width`."""

    def __init__(self, config: ModelConfig, width: int):
        t, f = config.mel_window, config.n_mels
        # Strided from the first layer: full-resolution convs on every window cost more than the rest.
        layers, c = [], 1
        for c_out, stride in ((32, 2), (64, 2), (128, 2), (128, 1)):
            layers.append(ConvAct(c, c_out, stride=stride))
            t, f, c = (t + stride - 1) // stride, (f + stride - 1) // stride, c_out
        super().__init__(*layers, nn.Flatten(), EqualLinear(c * t * f, width), nn.LeakyReLU(0.2))


class AudioEncoder(nn.Module):
    """E_aud: one per-frame mel window (mel_window, n_mels) -> a_t of shape (2L, C)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.tower = MelTower(config, config.audio_width)
        self.head = _codes_head(config.audio_width, config)
        self.config = config

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (N, mel_window, n_mels) -> (N, 2L, C)."""
        return self.head(self.tower(mel[:, None])).view(-1, self.config.n_codes, self.config.w_dim)
