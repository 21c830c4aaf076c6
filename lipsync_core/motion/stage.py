"""The motion stage of a render: the dub audio -> the target mouth shape of every frame of the shot.

    model prediction (models/motion.py), per frame, in the shape basis
      x the actor's style (style.py: the amplitude of the motion, where the mouth sits while speaking, the actor's
        rest shape)
      x the silence gate (pauses of the dub are the actor's resting mouth, not a slow drift)
      then the artist's controls from the shot sidecar (gain, keyed open / wide corrections)
    -> MotionCurves: per frame the lip and jaw points in the aligned crop, and the opening and width curves

The whole dub is predicted in one pass (60 s in a fraction of a second), so every chunk of a farm render
sees the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import FaceError, MediaError
from ..face.analyze import shot_track
from ..face.geometry import transform_points
from ..face.track import FaceTrack, Track
from ..media.audio import fit_full_scale, load_audio, log_mel
from ..media.frames import open_plate
from ..media.ocio import PlateSpace, require_float
from ..models.motion import MotionModel, gate, load_motion_model
from ..ops.generate import PEAK_HANDLING
from ..motion_controls import MotionControls
from ..shot import Shot
from .shape import CROP_UNITS, SHAPE_POINTS, crop_points, opening, width
from .style import MIN_SPEECH_FRAMES, ActorStyle, actor_style

SHAPE_DECIMALS = 3
SPEAKER_SCALE_LIMITS = (0.5, 2.0)  # a dub's articulation is scaled to the actor's by no more than this

@dataclass
class MotionCurves:
    """The target mouth of every frame of a shot."""

    frames: np.ndarray  # (N,) the plate's own frame numbers
    times: np.ndarray  # (N,) seconds on the dub audio
    shapes: np.ndarray  # (N, P, 2) lip and jaw points (landmarks.SHAPE_POINTS order) in a 256-px aligned crop
    rest: np.ndarray  # (P, 2) the actor's resting mouth
    silent: np.ndarray  # (N,) the dub is silent there (the mouth rests)
    style: str  # what calibrated the actor's style
    facts: dict = field(default_factory=dict)  # the model, the audio, the controls

    @property
    def opening(self) -> np.ndarray:
        """(N,) inner-lip gap over the rest's, crop units (0 closed, negative pressed)."""
        return opening(self.shapes) - opening(self.rest)

    @property
    def width(self) -> np.ndarray:
        """(N,) corner-to-corner width over the rest's, crop units."""
        return width(self.shapes) - width(self.rest)

    def __len__(self) -> int:
        return len(self.frames)


def predict(model: MotionModel, style: ActorStyle, mel: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(N, P, 2) target shapes and (N,) silence flags at `times` (seconds on the audio of `mel`), and the scale that
    took the dub's articulation to the actor's (`speaker_scale`)."""
    coefficients = model.predict(mel, times) * style.gain
    weight = gate(mel, times)
    motion = model.basis.decode(coefficients * weight[:, None])
    scale = speaker_scale(opening(style.rest + motion)[weight > 0], style.spread)
    shapes = style.rest + motion * scale
    # Where this actor's mouth sits while speaking is theirs, whoever speaks the dub: not scaled with its articulation.
    if style.offset is not None:
        shapes = shapes + style.offset * weight[:, None, None]
    # The lips close at the actor's rest opening and go no further: a mouth sitting less open than the average
    # speaker's (the offset) would otherwise pass its lips through each other on the model's quietest frames.
    pressed = np.minimum(opening(shapes) - opening(style.rest), 0.0)
    shapes -= pressed[:, None, None] * model.basis.open_direction.reshape(-1, 2)
    return shapes, weight == 0, scale


def speaker_scale(speaking: np.ndarray, spread: float | None) -> float:
    """How much to scale the motion of a dub whose opening while speaking is `speaking` (crop units) so that it
    spreads as the model's prediction on the plate's own speech does (`spread`, ActorStyle): the model hears how
    wide the dub's speaker articulates, and a dub of a speaker who barely parts the lips, or of one who opens wide,
    must still move the mouth as this actor does (measured on the dev split: other speech made a dub's opening
    spread 0.47-2.3x the actor's). Within SPEAKER_SCALE_LIMITS; 1 where the plate has no speech to compare with,
    or the dub too little."""
    if spread is None or len(speaking) < MIN_SPEECH_FRAMES:
        return 1.0
    return float(np.clip(spread / max(float(np.std(speaking)), 1e-6), *SPEAKER_SCALE_LIMITS))


def apply_controls(shapes: np.ndarray, frames: np.ndarray, controls: Callable[[int], MotionControls],
                   model: MotionModel, style: ActorStyle) -> np.ndarray:
    """The artist's per-frame controls on target shapes: gain scales the motion away from rest; a positive
    open adds that share of the actor's opening range, a negative one takes that share of the frame's opening
    away (-1 closes the lips); wide moves the corners in the actor's width range. Both move the shape along
    the model's opening and width directions; the lips never cross (an opening below rest is held at rest)."""
    out = shapes.copy()
    open_direction = model.basis.open_direction.reshape(-1, 2)
    wide_direction = model.basis.wide_direction.reshape(-1, 2)
    rest_gap = opening(style.rest)
    for i, number in enumerate(frames):
        c = controls(int(number))
        if c == MotionControls():
            continue
        shape = style.rest + (shapes[i] - style.rest) * c.gain + c.wide * style.wide_range * wide_direction
        gap = opening(shape) - rest_gap
        added = c.open * style.open_range if c.open >= 0 else c.open * max(gap, 0.0)
        out[i] = shape + (max(gap + added, 0.0) - gap) * open_direction
    return out


def shot_motion(plate: str | Path, audio: str | Path, *, shot: Shot | None = None, face: int | None = None,
                audio_offset_s: float = 0.0, model: MotionModel | str | Path | None = None, track: Track | None = None,
                dub_audio: np.ndarray | None = None, footage: tuple[np.ndarray, np.ndarray] | None = None,
                progress: Callable[[int, int], None] | None = None, notes: list[str] | None = None,
                space: PlateSpace | None = None) -> MotionCurves:
    """The target mouth of every frame of a shot dubbed with `audio` (anchored at the shot's first frame,
    `audio_offset_s` later), calibrated to the actor on the plate's own footage and audio, with the sidecar's
    motion controls applied. `track`, `dub_audio` (16 kHz samples) and `footage` (`footage_shapes` of this face)
    are used when the caller has them; a float plate is tracked in `space` (media.ocio). What the user should know
    (a face track tracked again, a dub scaled down to
    full scale) is added to `notes`."""
    plate = Path(plate)
    shot = shot or Shot.for_plate(plate)
    model = model if isinstance(model, MotionModel) else load_motion_model(model)
    if track is None:
        with open_plate(plate, frames=shot.frames) as opened:
            info = opened.info
        require_float(space, plate, info.dtype)
        track = shot_track(plate, shot, (info.first, info.last), progress, notes, space)
    face_id = shot.face if face is None else face
    if not track.faces:
        raise FaceError(f"{plate}: no face was found in the shot: there is no mouth to move")
    points, valid = footage or footage_shapes(track.face(face_id), track, shot)
    if not valid.any():
        raise FaceError(f"{plate}: face {face_id} is never wholly in view on a frame that is not bypassed")

    plate_times = track.times - track.times[0]
    own_mel = _own_speech(plate, track)
    style = actor_style(model, points, valid, own_mel, track.times if own_mel is not None else plate_times)

    if dub_audio is None:
        # As `lipsync dub` hears it by default: a dub above full scale scaled down to fit.
        dub_audio, peaks_note = fit_full_scale(load_audio(audio), audio, PEAK_HANDLING[0])
        if peaks_note and notes is not None:
            notes.append(peaks_note)
    samples = dub_audio
    mel = log_mel(samples)
    times = plate_times - audio_offset_s
    shapes, silent, scale = predict(model, style, mel, times)
    shapes = apply_controls(shapes, track.frames, shot.motion_controls, model, style)
    # Rounded to a thousandth of a pixel: machines with other thread counts differ in the last float bits, and
    # the choice of source frames must not flip on them (farm chunks must equal a full render).
    shapes = np.round(shapes, SHAPE_DECIMALS).astype(np.float32)
    facts = {"model": model.facts.get("name", "motion"), "audio": str(audio), "audio_offset_s": audio_offset_s,
             "style": style.facts(), "speaker_scale": round(scale, 4),
             "controls": shot.motion_json()}
    rest = np.round(style.rest, SHAPE_DECIMALS).astype(np.float32)
    return MotionCurves(track.frames.copy(), times, shapes, rest, silent, style.source, facts)


def footage_shapes(face: FaceTrack, track: Track, shot: Shot) -> tuple[np.ndarray, np.ndarray]:
    """The actor's own mouth shape on every frame of the track ((N, P, 2) CROP_UNITS, NaN without a face) and
    which frames are usable (face wholly in view, not bypassed)."""
    points = np.full((len(track), len(SHAPE_POINTS), 2), np.nan, np.float32)
    for i in np.flatnonzero(face.present):
        points[i] = crop_points(transform_points(face.landmarks[i], face.alignment(i, CROP_UNITS))[None], CROP_UNITS)[0]
    valid = face.present & ~face.partial & ~np.array([shot.bypassed(int(n)) for n in track.frames], bool)
    return points, valid


def _own_speech(plate: Path, track: Track) -> np.ndarray | None:
    """The log-mel of the plate's own audio on the plate's timeline (frame times `track.times`), None when it
    has none (image sequences, silent video)."""
    try:
        with open_plate(plate) as opened:
            start = opened.info.start_time
        return log_mel(load_audio(plate, offset_s=start))
    except MediaError:
        return None
