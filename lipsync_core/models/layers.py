"""StyleGAN2 building blocks, written for speed on CPU as well as GPU.

Modulation is applied to the activations (x * style) and demodulation to the output
(divide by the per-sample weight norm): mathematically the same as StyleGAN2's modulated
weights, but it runs as one ordinary batched convolution instead of a grouped one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights stored at N(0,1), scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.stride = stride
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class ConvAct(nn.Sequential):
    """EqualConv2d + leaky ReLU: the encoders' basic unit."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1):
        super().__init__(EqualConv2d(in_ch, out_ch, kernel, stride), nn.LeakyReLU(0.2))


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x upsampling with the [1,3,3,1] low-pass filter StyleGAN2 uses (bilinear is exactly that)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated (and optionally demodulated) convolution."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # (B, in_ch)
        weight = self.weight * self.scale
        if self.upsample:
            x = upsample2x(x)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # ||W * s||_2 per (sample, out channel) without materialising per-sample weights.
            sq = torch.einsum("oikl,bi->bo", weight.square(), style.square())
            out = out * torch.rsqrt(sq + 1e-8)[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength. At inference a fixed buffer is used so video does not flicker.
    `part` (rank, processes), set by a trainer whose batch is split evenly across processes: every process draws the
    noise of the whole batch and keeps its share, so the split trains as the whole batch would."""

    part: tuple[int, int] = (0, 1)

    def __init__(self, resolution: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        generator = torch.Generator().manual_seed(resolution)
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution, generator=generator), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            rank, processes = self.part
            b = x.shape[0]
            noise = torch.randn(b * processes, 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)[rank * b : (rank + 1) * b]
        else:
            noise = self.fixed
        return x + self.strength * noise


class ShareDropout(nn.Module):
    """Dropout whose mask, with `part` set as NoiseInjection's, is this process's share of the whole batch's mask, so
    a batch split across processes drops what the whole batch would."""

    part: tuple[int, int] = (0, 1)

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        rank, processes = self.part
        b = x.shape[0]
        keep = torch.rand((b * processes,) + x.shape[1:], device=x.device)[rank * b : (rank + 1) * b] >= self.p
        return x * keep / (1 - self.p)


class StyledConv(nn.Module):
    """Modulated 3x3 conv + noise + bias + leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.noise(self.conv(x, w)) + self.bias, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (not demodulated), added to the upsampled skip image; `out_ch` > 3 draws more
    planes the same way (the renderer's confidence)."""

    def __init__(self, in_ch: int, w_dim: int, out_ch: int = 3):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        rgb = self.conv(x, w) + self.bias
        return rgb if skip is None else rgb + upsample2x(skip)
