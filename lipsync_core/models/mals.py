"""MaLS: moving-average latent smoothing of the audio codes over time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaLS(nn.Module):
    """Per W+ slot: a (t-1, t, t+1) weighted moving average, then a small learned temporal conv.

    The conv is zero-initialised so an untrained MaLS is the pure moving average. Sequence edges
    replicate the first/last code, so any length works, 1 included.
    """

    CONTEXT = 2  # frames each side a code depends on: 1 for the average, 1 for the conv

    def __init__(self, w_dim: int, weights: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.temporal = nn.Conv1d(w_dim, w_dim, 3)
        nn.init.zeros_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)

    @staticmethod
    def _neighbours(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        padded = F.pad(x, (1, 1), mode="replicate")
        return padded[..., :-2], padded[..., 1:-1], padded[..., 2:]

    def moving_average(self, a: torch.Tensor) -> torch.Tensor:
        """a: (B, T, K, C) -> the weighted average over t-1, t, t+1, same shape."""
        b, t, k, c = a.shape
        x = a.permute(0, 2, 3, 1).reshape(b * k, c, t)
        prev, cur, nxt = self._neighbours(x)
        avg = self.weights[0] * prev + self.weights[1] * cur + self.weights[2] * nxt
        return avg.reshape(b, k, c, t).permute(0, 3, 1, 2)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        b, t, k, c = a.shape
        avg = self.moving_average(a)
        x = avg.permute(0, 2, 3, 1).reshape(b * k, c, t)
        x = x + self.temporal(F.pad(x, (1, 1), mode="replicate"))
        return x.reshape(b, k, c, t).permute(0, 3, 1, 2)
