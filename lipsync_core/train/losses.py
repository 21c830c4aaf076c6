"""Training losses: mouth-weighted L1, multi-scale structural similarity, SyncNet sync loss, contrastive sync."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian_window(size: int = 7, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of two image batches in [0, 1] (N, C, H, W), Gaussian window 7, sigma 1.5."""
    c = a.shape[1]
    window = _gaussian_window(device=a.device).expand(c, 1, -1, -1)

    def blur(x):
        return F.conv2d(x, window, padding=window.shape[-1] // 2, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 with a per-pixel weight map (N, 1, H, W), normalised by each image's weight sum, then the mean over images:
    a batch split across processes (their losses averaged) gives the loss of the whole batch."""
    return (_per_image((pred - target).abs() * weight) / (_per_image(weight) * pred.shape[1])).mean()


def _per_image(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=(1, 2, 3))


def multiscale_structural(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Mean of weighted (1 - SSIM) over `scales` dyadic scales, normalised per image as `weighted_l1`. Images in [-1, 1]."""
    loss = 0.0
    a, b, w = (pred + 1) / 2, (target + 1) / 2, weight
    for i in range(scales):
        if i:
            a, b, w = (F.avg_pool2d(x, 2) for x in (a, b, w))
        loss = loss + (_per_image((1 - ssim_map(a, b)) * w) / (_per_image(w) * a.shape[1])).mean()
    return loss / scales


def blur(x: torch.Tensor) -> torch.Tensor:
    """Each channel of (N, C, H, W) under the structural term's Gaussian (7 taps, sigma 1.5): the low band."""
    c = x.shape[1]
    window = _gaussian_window(device=x.device).expand(c, 1, -1, -1)
    return F.conv2d(F.pad(x, (3, 3, 3, 3), mode="replicate"), window, groups=c)


def texture_amount(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> how much fine texture each pixel's neighbourhood holds: the local RMS of the high band."""
    return torch.sqrt(blur((x - blur(x)) ** 2) + 1e-6)


def band_losses(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """For the footage path's renderer: the low band matched pixel by pixel (weighted L1 and the structural term on
    it), the fine texture only in amount. A real frame warped onto the target carries real texture that cannot line
    up hair for hair with the target's; compared pixel by pixel, a blur would score better than it."""
    low_pred, low_target = blur(pred), blur(target)
    return {"l1": weighted_l1(low_pred, low_target, weight),
            "structural": multiscale_structural(low_pred, low_target, weight),
            "texture": weighted_l1(texture_amount(pred), texture_amount(target), weight)}


def sync_loss(similarity: torch.Tensor) -> torch.Tensor:
    """The paper's SyncNet loss: 1 - cos(f_v, f_a)."""
    return (1 - similarity).mean()


def contrastive_sync_loss(video: torch.Tensor, audio: torch.Tensor, shifted_audio: torch.Tensor, temperature: float = 0.07,
                          first: int = 0) -> torch.Tensor:
    """InfoNCE for SyncNet: each video window against every audio window of the batch (in-batch negatives)
    and against time-shifted audio of its own clip (hard negatives). All embeddings unit length.

    video: (B, D), windows first..first+B of the batch whose audio is `audio` (N, D): a process's share of a batch
    split across processes, against the whole batch's audio (averaged over the processes, the whole batch's loss);
    shifted_audio: (B, K, D).
    """
    in_batch = video @ audio.T  # (B, N): column first + i is row i's positive
    shifted = torch.einsum("bd,bkd->bk", video, shifted_audio)
    logits = torch.cat([in_batch, shifted], dim=1) / temperature
    target = torch.arange(first, first + video.shape[0], device=video.device)
    return F.cross_entropy(logits, target)
