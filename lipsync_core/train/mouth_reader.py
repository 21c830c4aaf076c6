"""Training only: a small CNN that reads the mouth's opening and width off a face crop, for the
generator's cross-audio loss.

Why: on real footage the head moves with the speech it was shot with, so the upper face and the pose
of the mask carry the original mouth (on the GRID dev clip the nose's height in the crop correlates
-0.85 with the mouth opening). A generator trained only to reconstruct learns to read those cues, and
a dub then mouths the *original* dialogue. The cross-audio loss renders each training window with
another window's speech and asks this reader to find, on the generated frames, the mouth that speech
was spoken with (`cross_audio_targets`); the footage's own cues cannot help there.

The reader is fitted once per run on the real frames (targets from the face mesh, `data.mouth_size`)
and stays frozen; it does not ship. Personalization fits one on the actor's own frames for its sync
regularizer (personalize.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.config import ModelConfig
from ..models.syncnet import mouth_region
from .augment import colour_jitter
from .data import PreparedClip, mouth_size, to_tensor_images

READER_WIDTH = 64  # the mouth region is resized to 48 x 64, as SyncNet's


class MouthReader(nn.Module):
    """(N, 3, S, S) aligned crops in [-1, 1] -> (N, 2) mouth opening and width in `MOUTH_SHAPE_SPREAD`
    units (not less the clip's median: the reader sees one frame and cannot know it)."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for width in (32, 64, 96, 128):
            layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 2)
        # The footage's mean mouth (set before fitting): the head learns the differences from it, which
        # are about 1 in these units, while the width itself is about 20.
        self.register_buffer("mean", torch.zeros(2))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.mean + self.head(self.features(mouth_region(crops, READER_WIDTH)).mean((2, 3)))


def frame_targets(clips: list[PreparedClip]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every face frame of the clips: (clip index, frame index, target (2,))."""
    index, targets = [], []
    for ci, clip in enumerate(clips):
        frames = np.flatnonzero(clip.valid)
        index += [(ci, i) for i in frames]
        targets.append(mouth_size(clip)[frames])
    index = np.array(index)
    return index[:, 0], index[:, 1], np.concatenate(targets)


def train_mouth_reader(train: list[PreparedClip], dev: list[PreparedClip], path: Path, config: ModelConfig, *,
                       steps: int = 1500, batch: int = 64, lr: float = 2e-3, seed: int = 0,
                       device: torch.device = torch.device("cpu"), progress: Callable[[int, int], None] | None = None) -> dict:
    """Fit the reader on the train clips' face frames and write it to `path`; returns its dev measures
    (MSE and the correlation of read and measured opening). A few minutes on CPU; it is redone from
    the start if interrupted. `progress(step, steps)` after every step replaces the progress bar."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clip_of, frame_of, targets = frame_targets(train)
    reader = MouthReader()
    reader.mean.copy_(torch.from_numpy(targets.mean(0)))
    reader.to(device)
    opt = torch.optim.Adam(reader.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(range(1, steps + 1), desc="mouth reader", unit="step", disable=progress is not None)
    for step in bar:
        pick = rng.integers(len(targets), size=batch)
        crops = np.stack([train[c].crops[f] for c, f in zip(clip_of[pick], frame_of[pick])])
        flip = rng.random(batch) < 0.5
        crops[flip] = crops[flip, :, ::-1]  # a mirrored mouth opens as wide
        images = colour_jitter(to_tensor_images(crops)[:, None], gen)[:, 0].to(device)
        loss = F.mse_loss(reader(images), torch.from_numpy(targets[pick]).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if progress is not None:
            progress(step, steps)
    measures = dev_measures(reader, dev or train[:1])
    save_checkpoint(path, {"mouth_reader": reader}, config, {"steps": steps, **measures})
    return measures


@torch.no_grad()
def dev_measures(reader: MouthReader, clips: list[PreparedClip]) -> dict:
    reader.eval()
    device = next(reader.parameters()).device
    clip_of, frame_of, targets = frame_targets(clips)
    crops = np.stack([clips[c].crops[f] for c, f in zip(clip_of, frame_of)])
    read = torch.cat([reader(to_tensor_images(crops[i : i + 256]).to(device)).cpu() for i in range(0, len(crops), 256)]).numpy()
    reader.train()
    return {"dev_mse": float(((read - targets) ** 2).mean()),
            "dev_opening_r": float(np.corrcoef(read[:, 0], targets[:, 0])[0, 1])}


def load_mouth_reader(path: Path, config: ModelConfig, device: torch.device) -> MouthReader:
    """The fitted reader, frozen, in eval mode (its batch statistics fixed)."""
    reader = MouthReader()
    load_checkpoint(path, {"mouth_reader": reader}, config)
    return reader.to(device).eval().requires_grad_(False)


def cross_audio_loss(reader: MouthReader, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the mouth `reader` finds on generated frames (B, T, 3, S, S) and `target` (B, T, 2)."""
    return F.mse_loss(reader(frames.flatten(0, 1)).view_as(target), target)


def cross_audio_targets(batch: dict) -> torch.Tensor:
    """The mouth (B, T, 2) each window should show when rendered with the next window's speech (a
    rotation of the batch, so mostly another clip's; `MouthReadout.forward` with `cross`): the window's
    own resting mouth moved by the mouth shape that speech was spoken with."""
    return batch["mouth_rest"][:, None] + batch["mouth"].roll(1, 0)
