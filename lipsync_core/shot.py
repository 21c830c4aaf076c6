"""A shot: what one dub of one plate needs, saved as a small JSON sidecar next to the plate.

    plate.mp4                  ->  plate.mp4.lipsync.json
    plate.####.exr (any frame) ->  plate.####.exr.lipsync.json

The sidecar is versioned, meant to be read and edited by hand, and checked strictly on load: an
unknown key, a wrong type, a value out of range or a path leading out of the shot's folder is a
`ShotError` naming the field. Paths in it are relative to the sidecar's folder, so a shot folder can
be moved or versioned as a whole.

    {
      "version": 1,
      "source": "plate.mp4",
      "frames": [1001, 1100],              // optional: the range to dub (plate's own numbering)
      "audio": "dub.wav",                  // optional
      "face": 0,                           // which tracked face (0 = the largest)
      "reference": 1010,                   // optional: frame whose face is the identity reference
      "mask": {                            // the compositor's controls, each constant or keyframed
        "grow": 4,
        "feather": null,                   // null: automatic (about 6% of the face height)
        "offset_y": {"keys": [[1001, 0], [1050, -6]], "interpolation": "linear"},
        "jaw_extension": 0.25,
        "mouth_margin": 0.05
      },
      "motion": {                          // the artist's motion controls, each constant or keyframed
        "gain": 1.2,                       // articulation: motion away from the resting mouth, scaled
        "open": {"keys": [[1011, 0], [1012, 0.5], [1020, 0.5], [1021, 0]], "interpolation": "linear"},
        "wide": 0                          // open / wide: added, in the actor's own opening / width range
      },
      "painted": [{"path": "roto/mouth.####.png", "frames": [1040, 1044], "mode": "add"}],
      "bypass": [[1060, 1065]],            // frames left untouched (a hand in front of the mouth)
      "appearance": ["takes/take2.mov", "/shows/x/reels/jane_interview.mov"]
                                           // more footage of the actor to take mouths from
    }

Appearance clips are the one exception to "inside the shot's folder": they are footage of the actor that many
shots share (another take, an interview reel), so they may be absolute or lead out of the folder. Relative ones
are still read from the sidecar's folder.

This module is a plain data model: no UI, no face analysis. The panel and the host nodes edit these
objects and `save()` them.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MediaError, ShotError
from .mask_controls import MASK_LIMITS, MaskOverrides
from .motion_controls import MOTION_LIMITS, MotionControls
from .ops.schema import limits_text
from .face.geometry import warp_to_crop
from .media.fingerprint import plate_fingerprint
from .media.frames import IMAGE_EXTENSIONS
from .media.images import read_image
from .textfiles import parse_json, quoted, read_text

VERSION = 3  # 2: motion controls; 3: appearance clips. A sidecar is written with the lowest version that holds it.
SIDECAR_SUFFIX = ".lipsync.json"
TRACK_SUFFIX = ".track.npz"

INTERPOLATIONS = ("hold", "linear")
PAINT_MODES = ("replace", "add")


@dataclass
class Keyframes:
    """A control that changes over the shot: values at frames, held or linearly interpolated between
    them, and held before the first key and after the last."""

    keys: list[tuple[int, float]]
    interpolation: str = "hold"

    def at(self, frame: int) -> float:
        frames = [k[0] for k in self.keys]
        i = int(np.searchsorted(frames, frame, side="right")) - 1
        if i < 0:
            return float(self.keys[0][1])
        if i == len(self.keys) - 1 or self.interpolation == "hold":
            return float(self.keys[i][1])
        (f0, v0), (f1, v1) = self.keys[i], self.keys[i + 1]
        return float(v0 + (v1 - v0) * (frame - f0) / (f1 - f0))


@dataclass
class PaintedMask:
    """A painted/roto mask image sequence (plate-sized, its alpha or else its first channel is the
    mask) used on `frames`: replacing the automatic mask, or added to it."""

    path: str  # pattern relative to the shot folder: roto/mouth.####.png or roto/mouth.%04d.png
    frames: tuple[int, int]
    mode: str = "replace"


@dataclass
class Shot:
    path: Path  # the sidecar file
    source: str  # the plate, relative to the sidecar's folder
    frames: tuple[int, int] | None = None
    audio: str | None = None
    face: int = 0
    reference: int | None = None
    mask: dict[str, float | None | Keyframes] = field(default_factory=dict)
    motion: dict[str, float | Keyframes] = field(default_factory=dict)
    painted: list[PaintedMask] = field(default_factory=list)
    bypass: list[tuple[int, int]] = field(default_factory=list)
    appearance: list[str] = field(default_factory=list)  # footage of the actor: relative to the folder, or absolute

    # ---------------------------------------------------------------------------- files

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def plate(self) -> Path:
        return self.folder / self.source

    @property
    def audio_path(self) -> Path | None:
        return None if self.audio is None else self.folder / self.audio

    @property
    def appearance_paths(self) -> list[Path]:
        return [self.folder / clip for clip in self.appearance]

    @classmethod
    def for_plate(cls, plate: str | Path, sidecar: str | Path | None = None) -> Shot:
        """The shot of a plate: the given sidecar, else the one next to the plate, else a new one
        (not saved until `save()`)."""
        path = Path(sidecar) if sidecar is not None else sidecar_path(plate)
        if sidecar is not None or path.is_file():
            return cls.load(path)
        return cls(path=path, source=_sequence_pattern(Path(plate).name))

    @classmethod
    def load(cls, path: str | Path) -> Shot:
        path = Path(path)
        return from_dict(parse_json(read_text(path, "shot sidecar", ShotError), path, "shot sidecar", ShotError), path)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the sidecar (atomically: a temporary file renamed over it) and return its path."""
        if path is not None:
            self.path = Path(path)
        validate(self)
        temporary = self.path.with_name(self.path.name + ".tmp")
        text = json.dumps(to_dict(self), indent=2)
        # [first, last] and [frame, value] pairs on one line: the file stays short enough to read.
        text = re.sub(r"\[\s+([-\d.e+]+),\s+([-\d.e+]+)\s+\]", r"[\1, \2]", text)
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, self.path)
        return self.path

    def track_path(self) -> Path:
        """Where `lipsync analyze` caches this shot's face track: beside the sidecar."""
        return self.path.with_suffix(TRACK_SUFFIX)

    def track_mismatch(self, track, frames: tuple[int, int], colourspace: str = "") -> str | None:
        """Why a cached track is not this shot's plate, as it is now, over exactly `frames`, read in `colourspace`
        (a media.ocio.PlateSpace.key, "" for none; None when it is)."""
        if Path(track.plate).resolve() != self.plate.resolve():
            return f"it was made on another plate, {track.plate}"
        made = (int(track.frames[0]), int(track.frames[-1]))
        if len(track) != frames[1] - frames[0] + 1 or made != tuple(frames):
            return f"it covers frames {made[0]}-{made[1]}, the shot {frames[0]}-{frames[1]}"
        # The same name and range can hold another take: only the plate's content tells.
        if track.source != plate_fingerprint(self.plate, frames):
            return "the plate has changed since it was made"
        if track.colourspace != colourspace:
            return "it was made with the plate read in another colourspace"
        return None

    # ---------------------------------------------------------------------------- per frame

    def overrides(self, frame: int) -> MaskOverrides:
        """The mask controls on one frame."""
        values = {}
        for name, value in self.mask.items():
            values[name] = value.at(frame) if isinstance(value, Keyframes) else value
        return MaskOverrides(**values)

    def motion_controls(self, frame: int) -> MotionControls:
        """The motion controls on one frame."""
        return MotionControls(**{name: value.at(frame) if isinstance(value, Keyframes) else value
                                 for name, value in self.motion.items()})

    def motion_json(self) -> dict:
        """The motion controls as the sidecar stores them."""
        return {name: _channel_json(value) for name, value in self.motion.items()}

    def bypassed(self, frame: int) -> bool:
        return any(first <= frame <= last for first, last in self.bypass)

    def painted_on(self, frame: int) -> PaintedMask | None:
        """The painted mask used on a frame (the last listed wins where ranges overlap)."""
        hits = [p for p in self.painted if p.frames[0] <= frame <= p.frames[1]]
        return hits[-1] if hits else None

    def apply_painted(self, mask: np.ndarray, frame: int, M: np.ndarray | None = None) -> np.ndarray:
        """The mask with the frame's painted mask applied (replace or add); unchanged where there is
        none. `mask` is plate-sized, or with M (plate -> crop) crop-sized."""
        painted = self.painted_on(frame)
        if painted is None:
            return mask
        index = self.painted.index(painted)
        image = _read_painted(self.folder, painted, frame, f"painted[{index}].path")
        if M is not None:
            image = np.clip(warp_to_crop(image, M, mask.shape[0]), 0.0, 1.0)
        elif image.shape != mask.shape:
            raise ShotError(
                f"{self.path}: painted[{index}].path: frame {frame} is {image.shape[1]}x{image.shape[0]}, "
                f"the plate {mask.shape[1]}x{mask.shape[0]}"
            )
        return image if painted.mode == "replace" else np.maximum(mask, image)


def sidecar_path(plate: str | Path) -> Path:
    """`<plate>.lipsync.json`; for an image sequence named by one of its frames, the sidecar of the
    sequence pattern (plate.1001.exr -> plate.####.exr.lipsync.json)."""
    plate = Path(plate)
    return plate.with_name(_sequence_pattern(plate.name) + SIDECAR_SUFFIX)


def _sequence_pattern(name: str) -> str:
    numbered = re.fullmatch(r"(.*?[._-])(\d+)(\.[^.]+)", name)
    if numbered and numbered.group(3).lower() in IMAGE_EXTENSIONS:
        return numbered.group(1) + "#" * len(numbered.group(2)) + numbered.group(3)
    return name


def _frame_file(pattern: str, frame: int) -> str:
    hashes = re.search(r"#+", pattern)
    if hashes:
        return pattern[: hashes.start()] + str(frame).zfill(len(hashes.group(0))) + pattern[hashes.end() :]
    return re.sub(r"%(0?\d*)d", lambda m: ("%" + m.group(1) + "d") % frame, pattern, count=1)


def _read_painted(folder: Path, painted: PaintedMask, frame: int, field_name: str) -> np.ndarray:
    path = folder / _frame_file(painted.path, frame)
    try:
        image = read_image(path)
    except MediaError as error:
        raise ShotError(f"{field_name}: {error}") from error
    channel = image[..., 3] if image.shape[2] == 4 else image[..., 0]
    if np.issubdtype(channel.dtype, np.integer):
        return (channel.astype(np.float32) / np.iinfo(channel.dtype).max).astype(np.float32)
    return np.clip(channel.astype(np.float32), 0.0, 1.0)


# -------------------------------------------------------------------------------- JSON <-> Shot


def _channel_json(value: float | None | Keyframes):
    if isinstance(value, Keyframes):
        return {"keys": [list(k) for k in value.keys], "interpolation": value.interpolation}
    return value


def to_dict(shot: Shot) -> dict:
    data = {
        # The lowest version that holds the shot: an older lipsync reads what it can render.
        "version": 3 if shot.appearance else 2 if shot.motion else 1,
        "source": shot.source,
        "frames": list(shot.frames) if shot.frames else None,
        "audio": shot.audio,
        "face": shot.face,
        "reference": shot.reference,
        "mask": {name: _channel_json(value) for name, value in shot.mask.items()},
        "motion": shot.motion_json(),
        "painted": [{"path": p.path, "frames": list(p.frames), "mode": p.mode} for p in shot.painted],
        "bypass": [list(r) for r in shot.bypass],
        "appearance": list(shot.appearance),
    }
    if not shot.motion:
        del data["motion"]
    if not shot.appearance:
        del data["appearance"]
    return data


def from_dict(data, path: Path) -> Shot:
    """A Shot from parsed JSON, checked field by field."""
    check = _Checker(path)
    check.keys(data, "", required={"version", "source"},
               allowed={"version", "source", "frames", "audio", "face", "reference", "mask", "motion", "painted", "bypass",
                        "appearance"})
    version = check.integer(data["version"], "version", 1, None)
    if version > VERSION:
        check.fail("version", f"is {version}: this sidecar was written by a newer lipsync (reads up to {VERSION})")
    mask_data = data.get("mask") or {}
    check.keys(mask_data, "mask", allowed=set(MASK_LIMITS))
    motion_data = data.get("motion") or {}
    check.keys(motion_data, "motion", allowed=set(MOTION_LIMITS))
    painted_data = check.of_type(data.get("painted", []), "painted", list, "a list")
    bypass_data = check.of_type(data.get("bypass", []), "bypass", list, "a list")
    appearance_data = check.of_type(data.get("appearance", []), "appearance", list, "a list of clips")
    shot = Shot(
        path=path,
        source=check.of_type(data["source"], "source", str, "a path"),
        frames=None if data.get("frames") is None else check.frame_range(data["frames"], "frames"),
        audio=None if data.get("audio") is None else check.of_type(data["audio"], "audio", str, "a path"),
        face=check.integer(data.get("face", 0), "face", 0, None),
        reference=None if data.get("reference") is None else check.integer(data["reference"], "reference", None, None),
        mask={name: check.channel(value, f"mask.{name}", MASK_LIMITS[name], name == "feather") for name, value in mask_data.items()},
        motion={name: check.channel(value, f"motion.{name}", MOTION_LIMITS[name]) for name, value in motion_data.items()},
        painted=[check.painted(p, f"painted[{i}]") for i, p in enumerate(painted_data)],
        bypass=[check.frame_range(r, f"bypass[{i}]") for i, r in enumerate(bypass_data)],
        appearance=[check.of_type(c, f"appearance[{i}]", str, "a path") for i, c in enumerate(appearance_data)],
    )
    validate(shot)
    return shot


def validate(shot: Shot) -> None:
    """The checks that hold whichever way a Shot was made (loaded, or edited by a panel)."""
    check = _Checker(shot.path)
    check.inside(shot.source, "source")
    if shot.audio is not None:
        check.inside(shot.audio, "audio")
    for i, painted in enumerate(shot.painted):
        check.inside(painted.path, f"painted[{i}].path")
    for i, clip in enumerate(shot.appearance):
        if not clip.strip():
            check.fail(f"appearance[{i}]", "is empty: give the path of a clip of the actor")
    if shot.frames and shot.reference is not None and not shot.frames[0] <= shot.reference <= shot.frames[1]:
        check.fail("reference", f"frame {shot.reference} is outside the shot's frames {shot.frames[0]}-{shot.frames[1]}")
    _check_controls(check, shot.mask, shot.motion)


def validate_controls(mask: dict, motion: dict, given: str) -> None:
    """Mask and motion controls given for one render (a host's knobs, a caller's values), checked before they
    replace the shot's: a bad value is blamed on `given`, not on the sidecar."""
    _check_controls(_Checker(Path(), given), mask, motion)


def _check_controls(check: _Checker, mask: dict, motion: dict) -> None:
    check.keys(mask, "mask", allowed=set(MASK_LIMITS))
    for name, value in mask.items():
        check.channel(_channel_json(value), f"mask.{name}", MASK_LIMITS[name], name == "feather")
    check.keys(motion, "motion", allowed=set(MOTION_LIMITS))
    for name, value in motion.items():
        check.channel(_channel_json(value), f"motion.{name}", MOTION_LIMITS[name])


# What a user needs to know to correct a field whose number is out of range.
_FIELD_HINTS = {"face": " (0 is the largest face; `lipsync analyze PLATE` lists the faces found)"}


class _Checker:
    """Raises ShotError naming the sidecar (or where the values came from) and the field."""

    def __init__(self, path: Path, where: str | None = None):
        self.path = path
        self.where = where or str(path)

    def fail(self, name: str, problem: str):
        raise ShotError(f"{self.where}: {name or 'the sidecar'} {problem}")

    def keys(self, data, name: str, allowed: set[str], required: set[str] = frozenset()) -> None:
        if not isinstance(data, dict):
            self.fail(name, "must be a JSON object")
        for key in data:
            if key not in allowed:
                where = f"{name}.{key}" if name else key
                self.fail(where, f"is not a known field (known: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(data)):
            self.fail(f"{name}.{key}" if name else key, "is missing")

    def of_type(self, value, name: str, kind, description: str):
        if not isinstance(value, kind):
            self.fail(name, f"must be {description}, not {quoted(value)}")
        return value

    def number(self, value, name: str, low: float | None, high: float | None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(name, f"must be a number, not {quoted(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(name, f"is {value}: must be {limits_text(low, high)}" + _FIELD_HINTS.get(name, ""))
        return float(value)

    def integer(self, value, name: str, low: int | None, high: int | None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be a whole number, not {quoted(value)}")
        self.number(value, name, low, high)
        return value

    def frame_range(self, value, name: str) -> tuple[int, int]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(name, f"must be [first, last], not {quoted(value)}")
        first = self.integer(value[0], f"{name}[0]", None, None)
        last = self.integer(value[1], f"{name}[1]", None, None)
        if last < first:
            self.fail(name, f"is empty: first frame {first} is after last frame {last}")
        return first, last

    def channel(self, value, name: str, limits: tuple[float, float], nullable: bool = False) -> float | None | Keyframes:
        """A control: a number within `limits`, keyframes of such numbers, or (when `nullable`) null."""
        low, high = limits
        if value is None:
            if not nullable:
                self.fail(name, "must be a number or keyframes, not null")
            return None
        if not isinstance(value, dict):
            return self.number(value, name, low, high)
        self.keys(value, name, allowed={"keys", "interpolation"}, required={"keys"})
        interpolation = value.get("interpolation", "hold")
        if interpolation not in INTERPOLATIONS:
            self.fail(f"{name}.interpolation", f"is {quoted(interpolation)}: use one of {', '.join(INTERPOLATIONS)}")
        keys = self.of_type(value["keys"], f"{name}.keys", list, "a list of [frame, value]")
        if not keys:
            self.fail(f"{name}.keys", "is empty: give at least one [frame, value]")
        parsed = []
        for i, key in enumerate(keys):
            where = f"{name}.keys[{i}]"
            if not isinstance(key, (list, tuple)) or len(key) != 2:
                self.fail(where, f"must be [frame, value], not {quoted(key)}")
            parsed.append((self.integer(key[0], f"{where}[0]", None, None), self.number(key[1], f"{where}[1]", low, high)))
        frames = [k[0] for k in parsed]
        if frames != sorted(set(frames)):
            self.fail(f"{name}.keys", "must be in frame order, one key per frame")
        return Keyframes(parsed, interpolation)

    def painted(self, value, name: str) -> PaintedMask:
        self.keys(value, name, allowed={"path", "frames", "mode"}, required={"path", "frames"})
        mode = value.get("mode", "replace")
        if mode not in PAINT_MODES:
            self.fail(f"{name}.mode", f"is {quoted(mode)}: use one of {', '.join(PAINT_MODES)}")
        path = self.of_type(value["path"], f"{name}.path", str, "a path")
        return PaintedMask(path, self.frame_range(value["frames"], f"{name}.frames"), mode)

    def inside(self, relative: str, name: str) -> None:
        """Paths stay inside the shot's folder: a shot folder moves and versions as a whole."""
        if not relative or Path(relative).is_absolute():
            self.fail(name, f"must be a path relative to the shot folder, not {quoted(relative)}")
        folder = self.path.parent.resolve()
        if not (folder / relative).resolve().is_relative_to(folder):
            self.fail(name, f"{quoted(relative)} leads out of the shot folder {folder}")
