"""What an image-sequence render records beside its frames: the settings that decide their pixels, so that
resuming it (or adding a chunk to it) with other settings is refused instead of mixing two dubs in one
sequence.

    .NAME.####.exr.render.json    {"version": 1, "settings": {"audio": "<sha256>", "model": ..., ...}}

Each setting is a hash of what the pixels depend on, not of how it was spelled: the dub's samples and
offset, the model files' contents, the shot as used (sidecar plus the options given), the face track.
A frame range is not a setting: chunks of one shot render exactly as the whole shot does.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..errors import LipSyncError, MediaError
from ..media.destination import write_failed
from ..media.frames import _ranges_text
from ..media.images import read_image
from ..media.locks import lock_path
from ..models.motion import DEFAULT_MOTION_MODEL
from ..ops.generate import MOUTHS
from ..shot import to_dict

VERSION = 1
_, FOOTAGE, RENDERED, GENERATED = MOUTHS
# What each setting is called when it differs.
NAMES = {"audio": "dub audio or --audio-offset", "model": "model", "motion": "motion model or motion curves",
         "shot": "sidecar or mask/motion options", "track": "face track (the plate changed)",
         "options": "--face, --mouth, --batch or --colourspace",
         "appearance": "added footage (--appearance, the sidecar's appearance list or the actor file's clips)"}


def record_path(output: Path) -> Path:
    """Beside the sequence, named as its lock is (a pattern spelled ####  or %04d is one sequence)."""
    lock = lock_path(output)
    return lock.with_name(lock.name[: -len(".lock")] + ".render.json")


def settings(renderer, model: Path | None, motion_model: Path | None, motion_curves: Path | None) -> dict[str, str]:
    """The hashes of what decides the pixels of `renderer`'s frames."""
    track = renderer.track
    arrays = [track.frames, track.times] + [a for face in track.faces for a in (face.landmarks, face.present, face.partial)]
    return {
        "audio": _hash(np.ascontiguousarray(renderer.audio).tobytes(), repr(renderer.offset_s).encode()),
        "model": _file_hash(model),
        "motion": _file_hash(motion_model or DEFAULT_MOTION_MODEL) + _file_hash(motion_curves)
        if renderer.mouth in (FOOTAGE, RENDERED) else "",
        "shot": _hash(json.dumps(to_dict(renderer.shot), sort_keys=True).encode()),
        "track": _hash(*(np.ascontiguousarray(a).tobytes() for a in arrays)),
        # A colourspace joins the list only when given: records written without one stay valid.
        "options": _hash(json.dumps([renderer.face_id, renderer.mouth, renderer.batch]
                                    + ([renderer.space.key] if renderer.space is not None else [])).encode()),
        "appearance": _hash(*(np.ascontiguousarray(a).tobytes() for footage in renderer.appearance_footage()
                              for a in (footage.track.frames, footage.face.landmarks, footage.usable))),
    }


def check(output: Path, current: dict[str, str], kept: list[int]) -> None:
    """Refuse to add frames to a sequence whose frames `kept` were rendered with other settings."""
    if not kept:
        return
    frames = _ranges_text(kept)
    path = record_path(output)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["settings"]
    except FileNotFoundError:
        raise LipSyncError(f"{output}: frames {frames} exist with no record of how they were rendered; give "
                           "--overwrite to render anyway, or write elsewhere") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise LipSyncError(f"{path}: unreadable render record; give --overwrite to render anyway") from None
    differ = [NAMES[name] for name in NAMES if recorded.get(name) != current[name]]
    if differ:
        raise LipSyncError(f"{output}: frames {frames} were rendered with another {', '.join(differ)}; continue with the "
                           "settings they were rendered with, or give --overwrite to render with these anyway")


def write(output: Path, current: dict[str, str]) -> None:
    path = record_path(output)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(json.dumps({"version": VERSION, "settings": current}, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise write_failed(path, error) from None


def whole_frame(path: Path, width: int, height: int) -> bool:
    """Whether a frame on disk is one a finished render wrote: readable, and the sequence's size."""
    try:
        return read_image(path).shape[:2] == (height, width)
    except MediaError:
        return False


def _file_hash(path: Path | None) -> str:
    if path is None or not Path(path).is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()
