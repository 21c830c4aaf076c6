"""How well the motion stage predicts real mouths, on prepared clips whose true motion is known.

- own audio: each clip's motion predicted from its own speech, the actor's style calibrated on the *other*
  half of the clip (two folds), so no frame is measured with a style fitted on it. Per clip (the mean of its
  two halves): Pearson r of predicted and true mouth opening; amplitude (spread of predicted over true
  opening); over the whole clip: lip landmark
  distance (LMD, mean distance of the 40 lip points, pixels of a 256-px crop) beside a frozen mouth (the
  clip's first face frame held) and the actor's rest shape held.
- other speech: clip A's motion predicted from clip B's speech (A's style): r against B's true opening
  (should be high: the mouth follows the new speech) and against A's own (should be about 0).
- silence: on pauses of at least MIN_PAUSE_S in the speech, the share of frames whose opening lies in the
  actor's rest band (the rest opening +- REST_BAND of their opening range).
"""

from __future__ import annotations

import numpy as np

from ..metrics import pearson
from ..models.motion import MEL_FPS, MotionModel, long_runs, silent_frames
from ..train.data import CACHE_FPS, PreparedClip
from .shape import LIP_INDEX, crop_points, opening
from .stage import predict
from .style import actor_style

MIN_PAUSE_S = 0.3
REST_BAND = 0.15
MIN_FOLD_FRAMES = 10  # face frames each half of a clip needs to be measured


def lmd(points: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """Mean distance of the lip points to the true ones over `valid` frames, crop units."""
    return float(np.linalg.norm(points[valid][:, LIP_INDEX] - truth[valid][:, LIP_INDEX], axis=-1).mean())


def own_audio(model: MotionModel, clip: PreparedClip) -> dict | None:
    """The own-audio measures of one clip (two folds: style from one half, measured on the other); None when a
    half of the clip has too few face frames to calibrate on or to measure."""
    truth = crop_points(clip.landmarks, clip.meta["size"])
    valid, times = clip.valid, clip.times
    half = len(clip) // 2
    predicted = np.zeros_like(truth)
    rs, amplitudes = [], []
    for fold in (np.arange(len(clip)) < half, np.arange(len(clip)) >= half):
        if min((valid & fold).sum(), (valid & ~fold).sum()) < MIN_FOLD_FRAMES:
            return None
        style = actor_style(model, truth, valid & ~fold, clip.mel, times)
        predicted[fold] = predict(model, style, clip.mel, times)[0][fold]
        gap, true_gap = opening(predicted)[fold & valid], opening(truth)[fold & valid]
        rs.append(pearson(gap, true_gap))
        amplitudes.append(float(gap.std() / max(true_gap.std(), 1e-6)))
    first = int(np.flatnonzero(valid)[0])
    frozen = np.repeat(truth[first][None], len(clip), 0)
    rest = np.repeat(actor_style(model, truth, valid, clip.mel, times).rest[None], len(clip), 0)
    return {"opening_r": float(np.mean(rs)), "amplitude": float(np.mean(amplitudes)),
            "lmd": lmd(predicted, truth, valid), "lmd_frozen": lmd(frozen, truth, valid), "lmd_rest": lmd(rest, truth, valid)}


def other_speech(model: MotionModel, actor: PreparedClip, speaker: PreparedClip) -> dict:
    """`actor` dubbed with `speaker`'s speech: r of the predicted opening with the speaker's true opening and
    with the actor's own, over the frames both clips cover."""
    truth = crop_points(actor.landmarks, actor.meta["size"])
    style = actor_style(model, truth, actor.valid, actor.mel, actor.times)
    n = min(len(actor), len(speaker))
    gap = opening(predict(model, style, speaker.mel, speaker.times[:n])[0])
    speaker_gap = opening(crop_points(speaker.landmarks[:n], speaker.meta["size"]))
    both = actor.valid[:n] & speaker.valid[:n]
    return {"r_new": pearson(gap[both], speaker_gap[both]), "r_original": pearson(gap[both], opening(truth[:n])[both])}


def silence(model: MotionModel, actor: PreparedClip, mel: np.ndarray) -> tuple[int, int]:
    """(frames at rest, frames) over the pauses of at least MIN_PAUSE_S in speech `mel`, dubbed on `actor`
    (its style) from its first frame, as many frames as the speech lasts."""
    truth = crop_points(actor.landmarks, actor.meta["size"])
    style = actor_style(model, truth, actor.valid, actor.mel, actor.times)
    times = np.arange(int(len(mel) / MEL_FPS * CACHE_FPS)) / CACHE_FPS
    quiet = silent_frames(mel)[np.minimum(np.round(times * MEL_FPS).astype(int), len(mel) - 1)]
    in_pause = long_runs(quiet, int(round(MIN_PAUSE_S * CACHE_FPS)))
    if not in_pause.any():
        return 0, 0
    gap = opening(predict(model, style, mel, times)[0]) - opening(style.rest)
    at_rest = np.abs(gap[in_pause]) <= REST_BAND * style.open_range
    return int(at_rest.sum()), int(in_pause.sum())


def measure(model: MotionModel, clips: list[PreparedClip], generator_lmd: dict[str, float] | None = None) -> dict | None:
    """Every measure on every clip (other speech: each clip dubbed with the next clip's speech), and the
    medians over the clips (None when no clip has enough face frames). `generator_lmd`: the LMD of the lips a generator draws per clip, to set beside."""
    per_clip = {}
    pauses = [0, 0]
    for i, clip in enumerate(clips):
        speaker = clips[(i + 1) % len(clips)]
        own = own_audio(model, clip)
        if own is None:
            continue  # too few face frames in one half (the report lists the clips measured)
        rows = {**own, **{f"other_{k}": v for k, v in other_speech(model, clip, speaker).items()}}
        if generator_lmd and clip.name in generator_lmd:
            rows["lmd_generator"] = generator_lmd[clip.name]
        at_rest, total = silence(model, clip, speaker.mel)
        pauses[0] += at_rest
        pauses[1] += total
        per_clip[clip.name] = rows
    if not per_clip:
        return None
    keys = sorted({k for rows in per_clip.values() for k in rows})
    median = {k: float(np.median([rows[k] for rows in per_clip.values() if k in rows])) for k in keys}
    median["silence_at_rest"] = pauses[0] / pauses[1] if pauses[1] else float("nan")
    median["silence_frames"] = pauses[1]
    return {"median": median, "clips": per_clip}


def measures_table(result: dict) -> str:
    """The medians as a markdown table a card or report shows."""
    m = result["median"]
    rows = [
        ("own audio: opening r (per clip, median)", f"{m['opening_r']:.3f}", ">= 0.5"),
        ("own audio: amplitude, predicted / true opening spread", f"{m['amplitude']:.2f}", "0.8-1.25"),
        ("own audio: LMD, predicted shapes", f"{m['lmd']:.2f}", ""),
        ("own audio: LMD, frozen mouth (first frame held)", f"{m['lmd_frozen']:.2f}", ""),
        ("own audio: LMD, the actor's rest shape held", f"{m['lmd_rest']:.2f}", ""),
    ]
    if "lmd_generator" in m:
        rows.append(("own audio: LMD, the lips the generator draws", f"{m['lmd_generator']:.2f}", ""))
    rows += [
        ("other speech: r with the new speech's true opening", f"{m['other_r_new']:.3f}", "high"),
        ("other speech: r with the actor's original opening", f"{m['other_r_original']:.3f}", "about 0"),
        (f"silence: frames at rest in pauses >= {MIN_PAUSE_S} s ({m['silence_frames']} frames)",
         f"{m['silence_at_rest']:.2%}", ">= 90%"),
    ]
    lines = ["| measure | value | aim |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)
