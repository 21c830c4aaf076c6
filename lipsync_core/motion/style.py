"""The actor's articulation style, from the shot's own footage.

People articulate differently: one speaker barely parts the lips, another opens wide. The shot already
holds this actor's mouth shapes (the face track) and, where the plate has its speech, the audio that drove
them. `actor_style` reads from them:
- the rest shape: the actor's own closed mouth (always, from the footage);
- where the plate's speech is usable (it is there, long enough, and the mouth follows it): the amplitude of
  the motion, so the model's prediction on that speech opens the mouth as far as the real one does;
- otherwise the average speaker's motion scaled to how far the footage shows this actor opening their mouth,
  and `source` says why;
- where it is calibrated so: where this actor's mouth sits while speaking, beside where the model puts it (the
  average speaker's mean motion from this actor's rest): the offset is added to the motion while the dub speaks.
  Measured on the dev split (style from one half of each clip, measured on the other): lip landmark distance to
  the real mouth 3.79 -> 2.88 crop units (the rest shape held: 3.72), opening r 0.486 -> 0.485;
- and the spread of the opening the model gives the plate's own speech, while speaking. A dub's motion is scaled to
  it (stage.predict): the model hears how wide a speaker articulates, and the dub's speaker's own articulation, wide
  or slight, must not carry over to this actor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import pearson
from ..models.motion import MEL_FPS, MotionModel, gate, silent_frames
from .shape import opening, rest_shape, width

MIN_SPEECH_FRAMES = 30  # 1.2 s of the actor speaking on screen (at 25 fps)
MIN_SYNC_R = 0.2  # below this the plate's audio is not what the mouth says (music, a voice off screen)
GAIN_LIMITS = (0.25, 4.0)  # of the model's average gain: an estimate outside is noise, not style
# The smallest opening and width ranges a correction is measured in (crop units): a shot where the actor
# never opens their mouth still gets a usable "open +0.5".
MIN_OPEN_RANGE, MIN_WIDE_RANGE = 8.0, 4.0


@dataclass
class ActorStyle:
    rest: np.ndarray  # (P, 2) the actor's resting mouth, CROP_UNITS
    gain: np.ndarray  # (K,) applied to the model's coefficients
    open_range: float  # crop units: the actor's wide opening over rest (the unit of the `open` control)
    wide_range: float  # crop units: the actor's widest over narrowest mouth (the unit of `wide`)
    spread: float | None  # crop units: the std of the model's opening on the plate's speech while it speaks (offset aside)
    source: str  # one line: what calibrated it
    offset: np.ndarray | None = None  # (P, 2) crop units: added to the motion while speaking (None: nothing)

    def facts(self) -> dict:
        return {"source": self.source, "gain": [round(float(g), 4) for g in self.gain],
                "open_range": round(self.open_range, 3),
                "wide_range": round(self.wide_range, 3),
                "spread": None if self.spread is None else round(self.spread, 3),
                "speaking_offset": None if self.offset is None else
                round(float(np.linalg.norm(self.offset, axis=-1).mean()), 3)}


def actor_style(model: MotionModel, points: np.ndarray, valid: np.ndarray, own_mel: np.ndarray | None,
                times: np.ndarray, own_name: str = "the plate's audio") -> ActorStyle:
    """points: (N, P, 2) the shot's mouth shapes (CROP_UNITS, NaN without a face); valid: (N,) frames with a
    usable face; own_mel: the log-mel of the plate's own audio (None: it has none); times: (N,) each frame's
    time on that audio."""
    rest = rest_shape(points, valid)
    gaps, spans = opening(points[valid]), width(points[valid])
    open_range = max(float(np.quantile(gaps, 0.95) - opening(rest)), MIN_OPEN_RANGE)
    wide_range = max(float(np.quantile(spans, 0.95) - np.quantile(spans, 0.05)), MIN_WIDE_RANGE)
    # Without usable speech the footage still shows how far this actor opens their mouth: the average speaker's
    # motion scaled to it (the model's facts hold the average speaker's opening spread).
    spread = float(np.std(gaps))
    typical = model.facts.get("opening_spread") or spread or 1.0
    footage_ratio = float(np.clip(spread / typical, *GAIN_LIMITS))
    average = ActorStyle(rest, model.gain * footage_ratio, open_range, wide_range, None, "")
    fallback = f"the average speaker's motion scaled to the footage's own opening (x{footage_ratio:.2f})"
    if own_mel is None:
        average.source = f"{fallback}: the plate has no audio of its own to calibrate on"
        return average
    speaking = valid & ~_silent_at(own_mel, times)
    if speaking.sum() < MIN_SPEECH_FRAMES:
        average.source = (f"{fallback}: {own_name} holds speech on only {int(speaking.sum())} frames with a face "
                          f"(needs {MIN_SPEECH_FRAMES})")
        return average
    predicted = model.predict(own_mel, times)
    # Does the mouth follow this audio at all? Measured as a dub would move it (pauses at rest), over every frame.
    weight = gate(own_mel, times)
    gated = predicted * model.gain * weight[:, None]
    predicted_gap = opening(rest + model.basis.decode(gated))[valid]
    r = pearson(predicted_gap, opening(points)[valid])
    if r < MIN_SYNC_R:
        average.source = (f"{fallback}: the mouth does not follow {own_name} (opening r {r:.2f} over "
                          f"{int(valid.sum())} frames; speech off screen, music, or out of sync)")
        return average
    # One amplitude for the whole shape, from the spread of the opening a dub of this speech would have against
    # the real one. Per-component spreads and means, fitted on a shot's few seconds, were measured worse on the
    # dev split (opening r 0.37 vs 0.41, amplitude 1.43 vs 1.34): each component's estimate is noisy on its own.
    ratio = float(np.std(opening(points)[valid]) / max(float(np.std(predicted_gap)), 1e-6))
    amplitude = float(np.clip(ratio, *GAIN_LIMITS))
    gain = model.gain * amplitude
    source = f"calibrated on {own_name} (opening r {r:.2f}, amplitude x{ratio:.2f} of the average speaker's)"
    # The motion a dub of this speech would have (the basis is linear: the amplitude scales it), and where the real
    # mouth sits beside it on the frames that speak.
    motion = amplitude * model.basis.decode(gated)
    speaking = valid & (weight >= 1)
    offset = (points[speaking] - rest - motion[speaking]).mean(axis=0) if speaking.any() else np.zeros_like(rest)
    # The spread of the model's motion on this speech, while it speaks: a dub of the plate's own audio is scaled by 1.
    spoken = float(np.std(opening(rest + motion)[weight > 0]))
    return ActorStyle(rest, gain.astype(np.float32), open_range, wide_range, spoken, source, offset.astype(np.float32))


def _silent_at(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    silent = silent_frames(mel)
    index = np.round(np.asarray(times) * MEL_FPS).astype(int)
    inside = (index >= 0) & (index < len(silent))
    return np.where(inside, silent[np.clip(index, 0, max(len(silent) - 1, 0))] if len(silent) else True, True)

