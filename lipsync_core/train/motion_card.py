"""`lipsync train motion-card`: measure a motion model on the dev split and write its model card, with a
plot of predicted against true mouth opening per dev clip beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LipSyncError
from ..eval.report import write_json
from ..evaluate import lip_landmarks, lmd, reconstruct
from ..models.motion import load_motion_model
from ..models.stylelipsync import StyleLipSync
from ..motion.measure import measure, measures_table
from ..motion.shape import SHAPE_POINTS, crop_points, opening
from ..motion.stage import predict
from ..motion.style import actor_style
from .data import PreparedClip


def generator_lmd(generator: StyleLipSync, clips: list[PreparedClip]) -> dict[str, float]:
    """Per clip, the LMD of the lips a StyleLipSync generator draws with the clip's own audio (as `lipsync eval`
    measures it: the face mesh on its frames against the face mesh on the real ones)."""
    out = {}
    for clip in clips:
        ref = int(np.flatnonzero(clip.valid)[0])
        frames = reconstruct(generator, clip, clip.mel_windows(generator.config.mel_window), ref)
        out[clip.name] = lmd(lip_landmarks(frames), lip_landmarks(clip.crops))
    return out


def write_motion_card(model_path: Path, dev: list[PreparedClip], out_dir: Path, generator: StyleLipSync | None,
                      licenses: dict[str, str]) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_motion_model(model_path)
    result = measure(model, dev, generator_lmd(generator, dev) if generator is not None else None)
    if result is None:
        raise LipSyncError("no dev clip has enough face frames in both halves to measure the motion model on")
    write_json(out_dir / f"{model_path.stem}_metrics.json", result)
    plot = out_dir / f"{model_path.stem}_opening.png"
    opening_plot(model, dev, plot)
    (out_dir / f"{model_path.stem}.md").write_text(_card_text(model_path, model, result, dev, plot, licenses))
    return result


def opening_plot(model, clips: list[PreparedClip], path: Path) -> None:
    """Per clip, true and predicted mouth opening over time (style from the clip's own footage and speech)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 1, figsize=(10, 1.8 * len(clips)), squeeze=False)
    for ax, clip in zip(axes[:, 0], clips):
        truth = crop_points(clip.landmarks, clip.meta["size"])
        style = actor_style(model, truth, clip.valid, clip.mel, clip.times)
        shapes, silent, _ = predict(model, style, clip.mel, clip.times)
        ax.plot(clip.times, opening(truth) - opening(style.rest), label="real", color="black", lw=1)
        ax.plot(clip.times, opening(shapes) - opening(style.rest), label="predicted", color="tab:red", lw=1)
        ax.fill_between(clip.times, 0, 1, where=silent, transform=ax.get_xaxis_transform(), color="0.9", label="pause")
        ax.set_title(clip.name, fontsize=8, loc="left")
        ax.set_ylabel("opening", fontsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _card_text(model_path: Path, model, result: dict, dev: list[PreparedClip], plot: Path, licenses: dict) -> str:
    facts, config = model.facts, model.net.config
    members = facts.get("member_runs")
    params = sum(p.numel() for p in getattr(model.net, "members", [model.net])[0].parameters())
    if members:
        alone = ", ".join(f"{m['dev_opening_r_median']:.3f}" for m in members if m.get("dev_opening_r_median") is not None)
        steps = " / ".join(str(m.get("step") or "?") for m in members)
        joined = (f"\nIt is the average of {len(members)} such networks trained alike from different seeds, "
                  f"joined by `lipsync train motion-ensemble`;\neach alone follows the dev clips' own speech with a median "
                  f"opening r of {alone} (before the actor's style and the silence gate).")
    else:
        steps, joined = facts.get("step", "?"), ""
    data = "\n".join(f"- {name}: {licenses.get(name, 'see ../shared/data/manifest.csv')}" for name in facts.get("train_clips", []))
    rows = "\n".join(f"| {name} | " + " | ".join(f"{rows.get(k, float('nan')):.2f}" for k in
                     ("opening_r", "amplitude", "lmd", "lmd_frozen", "lmd_generator", "other_r_new", "other_r_original")) + " |"
                     for name, rows in result["clips"].items())
    return f"""# Model card: {model_path.name}

The motion model: speech -> the mouth shape of every frame (the face mesh's {len(SHAPE_POINTS)} lip and jaw
points in the aligned face crop, as {config.components} basis coefficients of offsets from the actor's rest shape).
A dilated 1D convolution stack over the log-mel at 80 frames/s ({params / 1e3:.0f} k parameters, receptive field
{config.receptive_field_s():.2f} s), trained from scratch on CPU by `lipsync train motion` ({steps}
steps, the best on the dev split; audio augmented in level, EQ, voice, noise and speed; losses: squared error of
the shape and of the opening and their frame-to-frame change, and 1 - r of the opening over each 2.5-s segment).{joined}

## Dev-split measures
The {len(dev)} dev clips ({', '.join(d.name for d in dev)}): people the model never saw. Own audio: the actor's
style calibrated on one half of the clip, measured on the other (two folds). Other speech: each clip dubbed with
the next clip's speech, whose true mouth is known. LMD: mean distance of the 40 lip points to the real ones, pixels
of a 256-px crop; the generator's row is the lips the StyleLipSync generator draws with the clip's own audio.

{measures_table(result)}

| clip | opening r | amplitude | LMD | LMD frozen | LMD generator | other speech r | r with original |
|---|---|---|---|---|---|---|---|
{rows}

Predicted against real opening over time: `{plot.name}`.

## Data seen
Train split of `../shared/data` (AV clips' own audio and face-mesh landmarks; dev split held out). Licenses as the
manifest gives them; many are research-only:
{data}
"""
