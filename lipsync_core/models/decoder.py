"""The style decoder G with style-aware masked fusion (SaMF) in every block."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import ModulatedConv2d, StyledConv, ToRGB


class SaMF(nn.Module):
    """Style-aware masked fusion: a modulated conv predicts a 1-channel mask S from the encoder feature;
    out = S * E_face + (1 - S) * G_prev."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.mask_conv = ModulatedConv2d(channels, 1, 3, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 1, 1, 1))

    def mask(self, face_feature: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mask_conv(face_feature, w) + self.bias)

    def forward(self, decoded: torch.Tensor, face_feature: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.mask(face_feature, w)
        return s * face_feature + (1 - s) * decoded


class DecoderBlock(nn.Module):
    """One resolution of G: (upsampling) styled conv, SaMF with E_face's feature at this resolution,
    styled conv, skip toRGB. Two codes: the first drives conv1 and SaMF, the second conv2 and toRGB.

    SaMF fuses after the upsampling conv rather than before it, so that the encoder's
    full-resolution features reach the last block.
    """

    def __init__(self, in_ch: int, out_ch: int, resolution: int, w_dim: int, upsample: bool, planes: int = 3):
        super().__init__()
        self.conv1 = StyledConv(in_ch, out_ch, w_dim, resolution, upsample=upsample)
        self.samf = SaMF(out_ch, w_dim)
        self.conv2 = StyledConv(out_ch, out_ch, w_dim, resolution)
        self.to_rgb = ToRGB(out_ch, w_dim, planes)

    def forward(self, x, face_feature, w1, w2, skip):
        x = self.conv1(x, w1)
        x = self.samf(x, face_feature, w1)
        x = self.conv2(x, w2)
        return x, self.to_rgb(x, w2, skip)


class StyleDecoder(nn.Module):
    """StyleGAN2 synthesis network without a mapping network: W+ codes come from the encoders."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        ch = config.channels
        res = config.resolutions
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.blocks = nn.ModuleList(
            DecoderBlock(ch[r // 2] if i else ch[4], ch[r], r, config.w_dim, upsample=i > 0,
                         planes=4 if config.footage else 3)
            for i, r in enumerate(res)
        )
        self.resolutions = res

    def forward(self, codes: torch.Tensor, face_features: dict[int, torch.Tensor]) -> torch.Tensor:
        """codes: (N, 2L, C); face_features: resolution -> (N, ch, r, r). Returns RGB in [-1, 1]-ish (and for the
        footage path's renderer, the confidence's logit as a fourth plane)."""
        x = self.const.expand(codes.shape[0], -1, -1, -1)
        skip = None
        for i, (r, block) in enumerate(zip(self.resolutions, self.blocks)):
            x, skip = block(x, face_features[r], codes[:, 2 * i], codes[:, 2 * i + 1], skip)
        return skip
