"""What an evaluation writes: mean rows over clips, Markdown tables, a contact sheet of mouths over time
and a side-by-side video. Shared by `lipsync eval` and `lipsync train card`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from ..evaluate import CROSS_AUDIO_ROWS, OWN_AUDIO_ROWS
from ..media.frames import open_plate
from ..media.writers import open_writer
from ..train.data import CACHE_FPS, PreparedClip

ROWS = OWN_AUDIO_ROWS + CROSS_AUDIO_ROWS
COLUMNS = ("offset_accuracy", "lse_c", "lse_d", "dist_at_0", "mouth_loudness_r", "mouth_loudness_r_original_audio",
           "lmd", "psnr_lower_face", "ssim_lower_face", "psnr_crop", "ssim_crop", "detail_lower_face", "identity_sim")
SHEET_ROWS = ("real", "static", "model", "cross_audio")  # the frames shown in a contact sheet, top to bottom
SHEET_LABELS = {"real": "real", "static": "static", "model": "ours", "cross_audio": "ours, other speech"}

MEASURES_TEXT = """\
- offset_accuracy: share of 5-frame windows whose best audio offset in -15..+15 frames is within 1 frame
  of 0; lse_c / lse_d: SyncNet confidence (median minus minimum distance over the offsets) and minimum
  distance, in the style of LSE-C / LSE-D; dist_at_0: distance at offset 0. All with *our* SyncNet
  (1 - cosine of its embeddings): **not comparable with LSE-C / LSE-D numbers computed with the original
  SyncNet weights** (which cannot be shipped here); compare rows of the same report instead.
- mouth_loudness_r: model-free sync, Pearson r of the mouth opening (inner-lip gap, face mesh run on the
  frames) and the audio loudness; mouth_loudness_r_original_audio: the same for the other-speech dub
  against the clip's own audio (it should fall, as the mouth follows the new speech).
- lmd: mean distance of the 40 lip landmarks to the real frames', face mesh on the crops upscaled to
  256 px, in pixels of that crop (aligned to the face: 64 px is at most the eye-to-eye distance).
- psnr / ssim: inside the lower-face mask and over the whole crop (PSNR of identical frames is inf).
- detail_lower_face: Laplacian energy (fine edges) inside the lower-face mask over the real frames':
  1 = as crisp as the footage, below 1 = softer. A blur close on average keeps PSNR/SSIM but not this.
- identity_sim: mean cosine similarity of dlib face-recognition descriptors to the real frames (16 per
  clip); present only where the optional extra `identity` is installed.
- Everything is measured in the aligned crop the model sees (the renderer blends this crop back into
  the plate inside the mask only), at the model's crop size."""


def mean_rows(per_clip: dict[str, dict]) -> dict[str, dict]:
    """Per row, the mean over the clips of every measure (NaN values left out)."""
    out = {}
    for row in ROWS:
        values = [clip[row] for clip in per_clip.values() if row in clip]
        if values:
            keys = dict.fromkeys(k for v in values for k in v)
            out[row] = {k: _mean([v[k] for v in values if k in v]) for k in keys}
    return out


def _mean(values: list[float]) -> float:
    """Mean of the values that are not NaN (inf stays inf: PSNR of identical frames); NaN if none."""
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def markdown_table(rows: dict[str, dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """Rows as a Markdown table; columns no row has are left out."""
    columns = [c for c in columns if any(c in row for row in rows.values())]
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" if c in row else "" for c in columns) + " |")
    return "\n".join(lines)


def write_json(path: Path, data: dict) -> None:
    """JSON with non-finite numbers (PSNR of identical frames, a measure with no data) written as null."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    path.write_text(json.dumps(clean(data), indent=1) + "\n")


def side_by_side(path: Path, clip: PreparedClip, frames: dict[str, np.ndarray]) -> None:
    """real | static | ours, labelled, with the clip's own audio."""
    panels = [frames[k] for k in ("real", "static", "model")]
    source = Path(clip.meta["audio"])
    offset = 0.0 if source != Path(clip.meta["source"]) else open_plate(source).info.start_time
    size = clip.crops.shape[1]
    with open_writer(path, CACHE_FPS, 3 * size, size, audio=source, audio_offset_s=offset) as writer:
        for i in range(len(clip)):
            row = np.hstack([p[i] for p in panels]).copy()
            for j, label in enumerate(("real", "static", "ours")):
                cv2.putText(row, label, (j * size + 4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(row)


def contact_sheet(path: Path, frames: dict[str, np.ndarray], count: int = 12) -> None:
    """Mouth region over time: one labelled row per candidate (SHEET_ROWS), `count` frames spread over
    the frames every candidate has."""
    names = [n for n in SHEET_ROWS if n in frames]
    length = min(len(frames[n]) for n in names)
    s = frames[names[0]].shape[1]
    idx = np.linspace(0, length - 1, count).astype(int)
    rows = []
    for name in names:
        row = np.hstack([frames[name][i, s // 2 : s * 7 // 8, s // 4 : s * 3 // 4] for i in idx])
        row = cv2.resize(row, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.putText(row, SHEET_LABELS[name], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
