"""`lipsync train card`: measure a model on the dev split and write its model card, a side-by-side
video (real | static mouth | ours) and a contact sheet of mouths over time next to it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..evaluate import evaluate_clip
from ..media.audio import load_audio, log_mel, mel_windows
from ..media.frames import open_plate
from ..media.writers import open_writer
from ..models.checkpoint import load_checkpoint, read_metadata
from ..models.stylelipsync import StyleLipSync
from ..models.syncnet import SyncNet
from .data import CACHE_FPS, PreparedClip

ROWS = ("real", "static", "model", "cross_audio")
COLUMNS = ("offset_accuracy", "lse_c", "lse_d", "mouth_loudness_r", "lmd", "psnr_lower_face", "ssim_lower_face", "psnr_crop", "ssim_crop")


def load_models(path: Path) -> tuple[StyleLipSync, SyncNet, dict]:
    config, facts = read_metadata(path)
    model, syncnet = StyleLipSync(config), SyncNet(config)
    load_checkpoint(path, {"generator": model, "syncnet": syncnet}, config)
    return model.eval(), syncnet.eval(), facts


def _mean_rows(per_clip: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for row in ROWS:
        values = [clip[row] for clip in per_clip.values() if row in clip]
        if values:
            out[row] = {k: float(np.nanmean([v[k] for v in values])) for k in values[0]}
    return out


def markdown_table(rows: dict[str, dict]) -> str:
    lines = ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" if c in row else "" for c in COLUMNS) + " |")
    return "\n".join(lines)


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


def contact_sheet(path: Path, clip: PreparedClip, frames: dict[str, np.ndarray], count: int = 12) -> None:
    """Mouth region over time: one row per candidate, `count` frames spread over the clip."""
    s = clip.crops.shape[1]
    idx = np.linspace(0, len(clip) - 1, count).astype(int)
    rows = []
    for name in ("real", "static", "model", "cross_audio"):
        if name in frames:
            rows.append(np.hstack([frames[name][i, s // 2 : s * 7 // 8, s // 4 : s * 3 // 4] for i in idx]))
    sheet = cv2.resize(np.vstack(rows), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def write_card(model_path: Path, dev: list[PreparedClip], out_dir: Path, cross_audio: Path, licenses: dict[str, str]) -> dict:
    model, syncnet, facts = load_models(model_path)
    other = mel_windows(log_mel(load_audio(cross_audio)), np.arange(2000) / CACHE_FPS, model.config.mel_window)
    per_clip = {}
    for i, clip in enumerate(dev):
        rows = evaluate_clip(model, syncnet, clip, other)
        frames = rows.pop("_frames")
        per_clip[clip.name] = rows
        if i == 0:
            side_by_side(out_dir / f"{model_path.stem}_side_by_side.mp4", clip, frames)
            contact_sheet(out_dir / f"{model_path.stem}_mouths.png", clip, frames)
    summary = _mean_rows(per_clip)
    (out_dir / f"{model_path.stem}_metrics.json").write_text(json.dumps({"mean": summary, "clips": per_clip}, indent=1))
    card = out_dir / f"{model_path.stem}.md"
    card.write_text(_card_text(model_path, model, facts, summary, dev, cross_audio, licenses))
    return summary


def _card_text(model_path, model, facts, summary, dev, cross_audio, licenses) -> str:
    c = model.config
    data = "\n".join(f"- {name}: {licenses.get(name, 'see ../shared/data/manifest.csv')}" for name in facts.get("data", []))
    return f"""# Model card: {model_path.name}

StyleLipSync generator (config `{c.name}`: {c.size} px aligned crops, W+ of {c.n_codes} x {c.w_dim},
{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) with the SyncNet it was trained
against, trained from scratch on CPU by `lipsync train` ({facts.get('step', '?')} steps).

## Dev-split measures
Reconstruction: each of the {len(dev)} dev clips ({', '.join(d.name for d in dev)}) dubbed with its
own audio, reference = its first face frame, measured in the aligned crop. `static` pastes the
reference's lower face into every frame (no lip motion); `cross_audio` dubs the same clips with other
speech (`{cross_audio.name}`) and measures sync against that speech.

{markdown_table(summary)}

- offset_accuracy: share of 5-frame windows whose best audio offset in -15..+15 is within 1 frame of 0;
  lse_c / lse_d: SyncNet confidence / distance in the style of LSE-C/LSE-D, computed with *our*
  SyncNet (1 - cosine), so not comparable with numbers from the original SyncNet.
- mouth_loudness_r: Pearson r of the inner-lip gap (face mesh on the frames) and audio loudness.
- lmd: mean lip-landmark distance to the real frames, pixels of a 256 px crop.
- psnr / ssim: inside the mask (lower face) and over the whole crop.

Side-by-side video (real | static | ours): `{model_path.stem}_side_by_side.mp4`; mouths over time
(rows: real, static, ours, ours with other speech): `{model_path.stem}_mouths.png`.

## Data seen
Train split of `../shared/data` (AV clips; dev split held out). Licenses as the manifest gives them;
many are research-only, so this model is for evaluation and research use:
{data}
"""
