"""The prepared-data cache in memory, and the batches the trainers draw from it.

One `.npz` per clip (written by `prepare`): aligned crops, crop-space masks, landmarks in crop
coordinates, a per-frame face flag, and the clip's log-mel, all at the conformed rate `CACHE_FPS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..face.landmarks import LIPS, mouth_opening, mouth_width
from ..media.audio import mel_windows

CACHE_FPS = 25.0


@dataclass
class PreparedClip:
    name: str
    crops: np.ndarray  # (N, S, S, 3) uint8
    masks: np.ndarray  # (N, S, S) uint8
    landmarks: np.ndarray  # (N, 478, 2) float32, crop pixel coordinates, NaN without a face
    valid: np.ndarray  # (N,) bool
    mel: np.ndarray  # (M, n_mels) float32
    meta: dict

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self)) / CACHE_FPS

    def mel_windows(self, width: int) -> np.ndarray:
        return mel_windows(self.mel, self.times, width)

    def window_starts(self, length: int) -> np.ndarray:
        """Starts of every run of `length` consecutive frames that all have a face."""
        ok = np.convolve(self.valid.astype(np.int32), np.ones(length, np.int32), "valid") == length
        return np.flatnonzero(ok)


def save_clip(path: Path, clip: PreparedClip) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, crops=clip.crops, masks=clip.masks, landmarks=clip.landmarks, valid=clip.valid,
             mel=clip.mel, meta=json.dumps(clip.meta))
    tmp.replace(path)


def load_clip(path: Path) -> PreparedClip:
    with np.load(path) as z:
        return PreparedClip(path.stem, z["crops"], z["masks"], z["landmarks"], z["valid"], z["mel"],
                            json.loads(str(z["meta"])))


def load_cache(cache_dir: Path, split: str | None = None, min_frames: int = 1) -> list[PreparedClip]:
    clips = [load_clip(p) for p in sorted(Path(cache_dir).glob("*.npz")) if not p.name.endswith(".tmp.npz")]
    return [c for c in clips if (split is None or c.meta.get("split") == split) and c.valid.sum() >= min_frames]


def to_tensor_images(crops: np.ndarray) -> torch.Tensor:
    """(..., S, S, 3) uint8 -> (..., 3, S, S) float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(127.5).sub_(1)
    return t.movedim(-1, -3)


def mouth_weight(landmarks: np.ndarray, size: int, margin: float = 0.35) -> np.ndarray:
    """(N, 478, 2) crop landmarks -> (N, size, size) float32 boxes around the lips, widened by `margin`."""
    out = np.zeros((len(landmarks), size, size), np.float32)
    for i, pts in enumerate(landmarks[:, list(LIPS), :2]):
        if np.isnan(pts).any():
            continue
        lo, hi = pts.min(0), pts.max(0)
        pad = (hi - lo) * margin + 2
        x0, y0 = np.clip(np.floor(lo - pad), 0, size).astype(int)
        x1, y1 = np.clip(np.ceil(hi + pad), 0, size).astype(int)
        out[i, y0:y1, x0:x1] = 1
    return out


def mouth_shape(clip: PreparedClip) -> np.ndarray:
    """(N, 2) mouth opening and width per frame, less the clip's median (`mouth_rest`: what speech
    changes, not who speaks), in units of their typical spread; 0 where there is no face."""
    return np.nan_to_num(mouth_size(clip) - mouth_rest(clip)).astype(np.float32)


def mouth_rest(clip: PreparedClip) -> np.ndarray:
    """(2,) the clip's median mouth opening and width, in the units of `mouth_shape` (0 without a face)."""
    return (np.nanmedian(mouth_size(clip)[clip.valid], axis=0) if clip.valid.any() else np.zeros(2)).astype(np.float32)


def mouth_size(clip: PreparedClip) -> np.ndarray:
    """(N, 2) mouth opening and width per frame, in the units of `mouth_shape` (NaN where there is no face)."""
    return np.stack([mouth_opening(clip.landmarks), mouth_width(clip.landmarks)], axis=1) / MOUTH_SHAPE_SPREAD


# Typical frame-to-frame spread (std) of mouth opening and width in talking footage, relative to the
# inter-ocular distance (measured on the train split): scales both read-out targets to about 1.
MOUTH_SHAPE_SPREAD = np.array([0.047, 0.038], np.float32)
# Reference candidates drawn per window; the one whose mouth differs most from the window's is used.
REFERENCE_CANDIDATES = 4


class WindowSampler:
    """Draws random training windows of `length` consecutive face frames, with a reference frame from the
    same clip at least `min_ref_gap` frames away. Of a few such candidates the reference is the one whose
    mouth differs most from the window's: copying the reference's mouth must not pay, so the mouth has to
    come from the audio."""

    def __init__(self, clips: list[PreparedClip], length: int, mel_width: int, seed: int, min_ref_gap: int = 5,
                 footage: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, withheld: float = 0.0):
        """footage (the footage path's renderer): each clip's warped frames and coverage by name
        (`footage_windows.footage_of`), which windows then carry; `withheld`: the share of windows drawn without."""
        self.clips = [c for c in clips if len(c.window_starts(length))]
        self.footage, self.withheld = footage, withheld
        self.starts = [c.window_starts(length) for c in self.clips]
        self.mels = [c.mel_windows(mel_width) for c in self.clips]
        self.shapes = [mouth_shape(c) for c in self.clips]
        self.rests = [mouth_rest(c) for c in self.clips]
        weights = np.array([len(s) for s in self.starts], np.float64)
        self.weights = weights / weights.sum()
        self.length = length
        self.min_ref_gap = min_ref_gap
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _reference(self, ci: int, start: int) -> int:
        clip, shape, mid = self.clips[ci], self.shapes[ci], start + self.length // 2
        candidates = np.flatnonzero(clip.valid)
        far = candidates[np.abs(candidates - mid) >= self.min_ref_gap]
        picks = self.rng.choice(far if len(far) else candidates, REFERENCE_CANDIDATES)
        return int(picks[np.abs(shape[picks, 0] - shape[mid, 0]).argmax()])

    def windows(self, batch: int, part: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
        """A generator batch: frames (B,T,3,S,S), masks (B,T,1,S,S), weights (B,T,1,S,S), ref (B,3,S,S),
        mels (B,T,W,n_mels), mouth (B,T,2) (`mouth_shape`), mouth_rest (B,2) (`mouth_rest`), and with footage
        warped (B,T,3,S,S) and covered (B,T,1,S,S) (0 for a withheld window). Random horizontal flips (a face and its mask
        flip together). part (rank, processes): `batch` windows are drawn and this process reads its own even share
        of them (B = batch / processes); samplers of the same seed and state hand the processes disjoint shares."""
        rank, processes = part
        picks = [self._pick() for _ in range(batch)]
        chosen = [(ci, s, flip, self._reference(ci, s)) for ci, s, flip in picks]
        given = self.rng.random(batch) >= self.withheld if self.footage is not None else np.zeros(batch, bool)
        share = batch // processes
        picks, given = picks[rank * share : (rank + 1) * share], given[rank * share : (rank + 1) * share]
        frames, masks, weights, refs, mels, mouths, warped, covered = [], [], [], [], [], [], [], []
        for ci, s, flip, r in chosen[rank * share : (rank + 1) * share]:
            clip = self.clips[ci]
            sl = slice(s, s + self.length)
            f, m, ref = clip.crops[sl], clip.masks[sl], clip.crops[r]
            w = 1 + 4 * mouth_weight(clip.landmarks[sl], f.shape[1]) + m / 255.0
            if flip:
                f, m, ref, w = f[:, :, ::-1], m[:, :, ::-1], ref[:, ::-1], w[:, :, ::-1]
            frames.append(f), masks.append(m), weights.append(w), refs.append(ref), mels.append(self.mels[ci][sl])
            mouths.append(self.shapes[ci][sl])
            if self.footage is not None:
                w, c = (x[sl] for x in self.footage[clip.name])
                warped.append(w[:, :, ::-1] if flip else w), covered.append(c[:, :, ::-1] if flip else c)
        footage = {}
        if self.footage is not None:
            footage = {"warped": to_tensor_images(np.stack(warped)),
                       "covered": torch.from_numpy(np.stack(covered).astype(np.float32) / 255.0)[:, :, None]
                       * torch.from_numpy(given.astype(np.float32))[:, None, None, None, None]}
        return footage | {
            "frames": to_tensor_images(np.stack(frames)),
            "masks": torch.from_numpy(np.stack(masks).astype(np.float32) / 255.0)[:, :, None],
            "weights": torch.from_numpy(np.stack(weights).astype(np.float32))[:, :, None],
            "ref": to_tensor_images(np.stack(refs)),
            "mels": torch.from_numpy(np.stack(mels)),
            "mouth": torch.from_numpy(np.stack(mouths)),
            "mouth_rest": torch.from_numpy(np.stack([self.rests[ci] for ci, _, _ in picks])),
        }

    def sync_batch(self, batch: int, n_shifts: int = 4, min_shift: int = 2, max_shift: int = 15,
                   part: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
        """A SyncNet batch: frames (B,T,3,S,S), the in-sync mel window of the middle frame (B,W,n_mels),
        and mel windows shifted by min_shift..max_shift frames in the same clip (B,K,W,n_mels). part: as `windows`."""
        draws = []
        for _ in range(batch):
            ci, s, flip = self._pick()
            offsets = self.rng.integers(min_shift, max_shift + 1, n_shifts) * self.rng.choice([-1, 1], n_shifts)
            draws.append((ci, s, flip, offsets))
        rank, processes = part
        share = batch // processes
        frames, mels, shifted = [], [], []
        for ci, s, flip, offsets in draws[rank * share : (rank + 1) * share]:
            clip, clip_mels = self.clips[ci], self.mels[ci]
            f = clip.crops[s : s + self.length]
            frames.append(f[:, :, ::-1] if flip else f)
            mid = s + self.length // 2
            mels.append(clip_mels[mid])
            # A shift that leaves the clip is taken the other way, so every negative really is shifted.
            target = np.where((mid + offsets < 0) | (mid + offsets >= len(clip_mels)), mid - offsets, mid + offsets)
            shifted.append(clip_mels[np.clip(target, 0, len(clip_mels) - 1)])
        return {
            "frames": to_tensor_images(np.stack(frames)),
            "mel": torch.from_numpy(np.stack(mels)),
            "shifted": torch.from_numpy(np.stack(shifted)),
        }

    def _pick(self) -> tuple[int, int, bool]:
        ci = int(self.rng.choice(len(self.clips), p=self.weights))
        return ci, int(self.rng.choice(self.starts[ci])), bool(self.rng.random() < 0.5)
