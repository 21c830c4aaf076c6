"""Photometric augmentation of training crops (same change over a window, different across the batch)."""

from __future__ import annotations

import torch


def colour_jitter(frames: torch.Tensor, generator: torch.Generator, strength: float = 0.15,
                  part: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """frames (B, ..., 3, H, W) in [-1, 1]: per-sample brightness, contrast and per-channel gain.
    part (rank, processes): `frames` are this process's share of a batch split evenly across processes; each
    sample gets the change it would get in the whole batch (every process draws for all, keeps its own)."""
    b = frames.shape[0]
    rank, processes = part
    mine = slice(rank * b, (rank + 1) * b)
    shape = (b * processes,) + (1,) * (frames.dim() - 1)
    gain = 1 + strength * (2 * torch.rand(b * processes, 3, generator=generator)[mine] - 1)
    gain = gain.view(b, *([1] * (frames.dim() - 4)), 3, 1, 1)
    contrast = 1 + strength * (2 * torch.rand(shape, generator=generator)[mine] - 1)
    bright = strength * (2 * torch.rand(shape, generator=generator)[mine] - 1)
    mean = frames.mean(dim=(-1, -2, -3), keepdim=True)
    return ((frames - mean) * contrast + mean + bright) * gain
