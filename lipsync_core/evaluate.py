"""Quality of a model on prepared clips (reconstruction: each clip dubbed with its own audio), against
the real footage and the static-mouth baseline (the reference frame's lower face pasted, no motion).

Everything is measured in the aligned crop the model works in:
- SyncNet LSE-C / LSE-D style scores and AV-offset accuracy (our SyncNet: not comparable with numbers
  computed with the original SyncNet weights);
- the correlation of mouth opening (inner-lip gap from the face mesh run on the frames) with the
  audio loudness envelope;
- LMD: mean distance of the lip landmarks to the real frames', in pixels of a 256 px crop;
- PSNR / SSIM of the lower face (inside the mask) and of the whole crop.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .face.landmarks import LIPS
from .face.tracker import track_frames
from .metrics import mouth_opening, psnr, sync_scores
from .models.stylelipsync import StyleLipSync
from .models.syncnet import SyncNet
from .train.data import PreparedClip, to_tensor_images
from .train.generator_trainer import masked_input
from .train.losses import ssim_map

LMD_CROP = 256  # LMD is reported in pixels of a crop of this size


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def reconstruct(model: StyleLipSync, clip: PreparedClip, mels: np.ndarray, ref_index: int, batch: int = 16) -> np.ndarray:
    """Generate every frame of a prepared clip with the given per-frame mel windows."""
    device = next(model.parameters()).device
    ref = to_tensor_images(clip.crops[ref_index])[None].to(device)
    codes = model.codes(ref, torch.from_numpy(mels)[None].to(device))[0]
    out = []
    for i in range(0, len(clip), batch):
        frames = to_tensor_images(clip.crops[i : i + batch]).to(device)
        masks = torch.from_numpy(clip.masks[i : i + batch].astype(np.float32) / 255)[:, None].to(device)
        out.append(to_uint8(model.decode(masked_input(frames, masks), masks, ref.expand(len(frames), -1, -1, -1), codes[i : i + batch])))
    generated = np.concatenate(out)
    # Frames without a face are not generated: keep the originals there.
    generated[~clip.valid] = clip.crops[~clip.valid]
    return generated


def static_mouth(clip: PreparedClip, ref_index: int) -> np.ndarray:
    """The baseline: the reference frame's lower face pasted into every frame's mask."""
    m = clip.masks[..., None].astype(np.float32) / 255
    return np.round(clip.crops * (1 - m) + clip.crops[ref_index] * m).astype(np.uint8)


def loudness(mels: np.ndarray) -> np.ndarray:
    """Per-frame loudness from the centre 50 ms of each frame's log-mel window."""
    c = mels.shape[1] // 2
    return mels[:, c - 2 : c + 2].mean(axis=(1, 2))


def lip_landmarks(crops: np.ndarray) -> np.ndarray:
    """Face-mesh landmarks of every crop, in pixels of an LMD_CROP crop (NaN where none is found)."""
    big = [cv2.resize(c, (LMD_CROP, LMD_CROP), interpolation=cv2.INTER_CUBIC) for c in crops]
    faces = track_frames(big, smooth=False)
    if not faces:
        return np.full((len(crops), 478, 2), np.nan)
    return faces[0].landmarks[..., :2]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def frame_quality(frames: np.ndarray, real: np.ndarray, masks: np.ndarray, valid: np.ndarray) -> dict:
    inside = masks > 127
    ps_face = [psnr(f, r, m) for f, r, m, v in zip(frames, real, inside, valid) if v]
    ps_all = [psnr(f, r) for f, r, v in zip(frames, real, valid) if v]
    a = torch.from_numpy(frames[valid]).float().permute(0, 3, 1, 2) / 255
    b = torch.from_numpy(real[valid]).float().permute(0, 3, 1, 2) / 255
    s = ssim_map(a, b).mean(1).numpy()
    m = inside[valid]
    finite = lambda xs: float(np.mean([x for x in xs if np.isfinite(x)])) if any(np.isfinite(xs)) else float("inf")
    return {
        "psnr_lower_face": finite(ps_face),
        "psnr_crop": finite(ps_all),
        "ssim_lower_face": float(s[m].mean()),
        "ssim_crop": float(s.mean()),
    }


def evaluate_clip(model: StyleLipSync, syncnet: SyncNet, clip: PreparedClip, other_mels: np.ndarray | None = None) -> dict:
    """Rows 'real', 'static', 'model' (and 'cross_audio' when other speech is given) of measures for one clip."""
    mels = clip.mel_windows(model.config.mel_window)
    ref_index = int(np.flatnonzero(clip.valid)[0])  # the first face frame, as at inference
    candidates = {"real": clip.crops, "static": static_mouth(clip, ref_index), "model": reconstruct(model, clip, mels, ref_index)}
    real_lips = lip_landmarks(clip.crops)
    rows = {}
    for name, frames in candidates.items():
        lm = real_lips if name == "real" else lip_landmarks(frames)
        row = {k: v for k, v in sync_scores(syncnet, frames, mels, clip.valid).items() if k != "windows"}
        row["mouth_loudness_r"] = _pearson(mouth_opening(lm), loudness(mels))
        row["lmd"] = float(np.nanmean(np.linalg.norm(lm[:, LIPS] - real_lips[:, LIPS], axis=-1)))
        row.update(frame_quality(frames, clip.crops, clip.masks, clip.valid))
        rows[name] = row
        if name == "model":
            rows["_frames"] = {"real": clip.crops, "static": candidates["static"], "model": frames}
    if other_mels is not None:
        n = min(len(other_mels), len(clip))
        cut = PreparedClip(clip.name, clip.crops[:n], clip.masks[:n], clip.landmarks[:n], clip.valid[:n], clip.mel, clip.meta)
        frames = reconstruct(model, cut, other_mels[:n], ref_index)
        lm = lip_landmarks(frames)
        row = {k: v for k, v in sync_scores(syncnet, frames, other_mels[:n], cut.valid).items() if k != "windows"}
        row["mouth_loudness_r"] = _pearson(mouth_opening(lm), loudness(other_mels[:n]))
        row["mouth_loudness_r_original_audio"] = _pearson(mouth_opening(lm), loudness(mels[:n]))
        rows["cross_audio"] = row
        rows["_frames"]["cross_audio"] = frames
    return rows
