"""Measures of lip-sync and image quality, shared by training, `lipsync eval` and the model card."""

from __future__ import annotations

import numpy as np
import torch

from .models.syncnet import SyncNet
from .train.data import to_tensor_images

MAX_OFFSET = 15  # frames each way searched for the best audio-video offset


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the entries where both are finite; 0 where it is undefined (too few, or constant)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


@torch.no_grad()
def sync_scores(syncnet: SyncNet, crops: np.ndarray, mel_windows: np.ndarray, valid: np.ndarray, batch: int = 64) -> dict:
    """SyncNet sync measures over a clip (crops (N,S,S,3) uint8, one mel window per frame).

    For each window of `syncnet_frames` face frames, the video embedding is compared with the audio
    embedding at offsets -15..+15 frames. Returns the share of windows whose best offset is within
    one frame of 0 (AV-offset accuracy), LSE-D style (mean of the minimum distance) and LSE-C style
    (mean of median minus minimum distance) measures, and the clip's dominant offset. Distances are
    1 - cosine on our SyncNet's embeddings: not comparable with numbers from the original SyncNet.
    """
    n = syncnet.config.syncnet_frames
    device = next(syncnet.parameters()).device
    ok = np.convolve(valid.astype(np.int32), np.ones(n, np.int32), "valid") == n
    starts = np.flatnonzero(ok)
    if len(starts) == 0:
        return {"windows": 0}
    audio = torch.cat([syncnet.embed_audio(torch.from_numpy(mel_windows[i : i + batch]).float().to(device))
                       for i in range(0, len(mel_windows), batch)])
    video = []
    for i in range(0, len(starts), batch):
        idx = starts[i : i + batch, None] + np.arange(n)
        video.append(syncnet.embed_video(to_tensor_images(crops[idx]).to(device)))
    video = torch.cat(video)
    mids = starts + n // 2
    offsets = np.arange(-MAX_OFFSET, MAX_OFFSET + 1)
    idx = np.clip(mids[:, None] + offsets, 0, len(mel_windows) - 1)
    dist = 1 - (video[:, None, :] * audio[torch.from_numpy(idx).to(device)]).sum(-1)
    dist = dist.cpu().numpy()
    inside = (mids[:, None] + offsets >= 0) & (mids[:, None] + offsets < len(mel_windows))
    dist = np.where(inside, dist, np.inf)
    best = offsets[dist.argmin(1)]
    d_min = dist.min(1)
    d_med = np.array([np.median(row[np.isfinite(row)]) for row in dist])
    return {
        "windows": int(len(starts)),
        "offset_accuracy": float(np.mean(np.abs(best) <= 1)),
        "lse_d": float(d_min.mean()),
        "lse_c": float((d_med - d_min).mean()),
        "dist_at_0": float(dist[:, MAX_OFFSET].mean()),
        "dominant_offset": int(np.bincount(best + MAX_OFFSET).argmax() - MAX_OFFSET),
    }


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR of two uint8-range images, optionally inside a (H, W) mask."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        diff = diff[mask.astype(bool)]
    mse = diff.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
