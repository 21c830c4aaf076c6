"""The shot open in the panel: the `Shot` sidecar, its plate, face track and dub audio, the current
frame, and every edit of the shot as an undoable command.

The panel edits exactly `lipsync_core.shot.Shot` (no second model). Every change goes through
`ShotDocument.edit`, which snapshots the editable fields before and after and pushes one command on
the `QUndoStack`; slider drags merge into one step. Painted masks are kept in memory while editing
and written as 16-bit PNGs (`roto/<plate>.paint.####.png`, mode "replace") when the shot is saved,
so the sidecar never names a file that is not there.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from lipsync_core.errors import FaceError, MediaError, ShotError
from lipsync_core.face.track import Track
from lipsync_core.media.audio import load_audio
from lipsync_core.media.frames import PlateInfo, open_plate
from lipsync_core.media.images import write_png
from lipsync_core.motion_controls import MOTION_LIMITS, MotionControls
from lipsync_core.shot import MASK_LIMITS, Keyframes, MaskOverrides, PaintedMask, Shot

from .frames import FrameCache

CONTROLS = ("grow", "feather", "offset_y", "jaw_extension", "mouth_margin")
MOTION_CONTROLS = ("gain", "open", "wide")
DEFAULTS = {f.name: f.default for cls in (MaskOverrides, MotionControls) for f in dataclasses.fields(cls)}
LIMITS = {**MASK_LIMITS, **MOTION_LIMITS}
PAINT_FOLDER = "roto"


@dataclass
class _State:
    """The editable part of a shot (plus the panel's painted masks), as one undo step sees it."""

    mask: dict
    motion: dict
    bypass: list
    face: int
    reference: int | None
    audio: str | None
    appearance: list
    painted: dict  # frame -> float32 plate mask (arrays are never changed in place)

    def same(self, other: _State) -> bool:
        return (
            (self.mask, self.motion, self.bypass, self.face, self.reference, self.audio, self.appearance) ==
            (other.mask, other.motion, other.bypass, other.face, other.reference, other.audio, other.appearance)
            and self.painted.keys() == other.painted.keys()
            and all(self.painted[k] is other.painted[k] for k in self.painted)
        )


class ShotEdit(QUndoCommand):
    """One edit: the shot's state before and after. Edits with the same `merge` key (one slider drag)
    collapse into one step."""

    def __init__(self, document: ShotDocument, text: str, before: _State, after: _State, merge: str | None):
        super().__init__(text)
        self._document, self.before, self.after, self.merge = document, before, after, merge

    def id(self) -> int:
        return 1 if self.merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, ShotEdit) or other.merge != self.merge:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self._document._restore(self.after)

    def undo(self) -> None:
        self._document._restore(self.before)


class ShotDocument(QObject):
    opened = Signal()  # a plate or sidecar was opened
    edited = Signal()  # the shot changed: an edit, undo or redo
    frameChanged = Signal(int)
    trackChanged = Signal()  # the face track arrived (or was cleared)
    analysisNeeded = Signal()  # opened without a matching cached track
    saved = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.shot: Shot | None = None
        self.info: PlateInfo | None = None
        self.track: Track | None = None
        self.audio: np.ndarray | None = None  # 16 kHz mono dub
        self.frames: FrameCache | None = None
        self.frame = 0
        self.painted: dict[int, np.ndarray] = {}
        self.undo = QUndoStack(self)
        self._stroke: tuple[_State, np.ndarray] | None = None

    # ------------------------------------------------------------------------------ opening

    def open(self, plate: str | Path | None = None, audio: str | Path | None = None, sidecar: str | Path | None = None) -> None:
        """Open a plate (its sidecar when there is one) or a sidecar, and optionally set the dub audio.
        Raises LipSyncError with a readable message; the document is unchanged then."""
        if plate is None and sidecar is None:
            raise ShotError("open a plate or a shot sidecar")
        # Absolute paths: the render runs in another process, from another folder.
        plate = None if plate is None else Path(plate).absolute()
        sidecar = None if sidecar is None else Path(sidecar).absolute()
        shot = Shot.load(sidecar) if plate is None else Shot.for_plate(plate, sidecar)
        if not shot.plate.exists() and "#" not in shot.source and "%" not in shot.source:
            raise MediaError(f"{shot.plate}: the shot's plate is not there")
        with open_plate(shot.plate) as whole:
            info = whole.info
        first, last = shot.frames or (info.first, info.last)
        if shot.frames:
            with open_plate(shot.plate, frames=shot.frames) as ranged:  # checks the range
                info = ranged.info
        audio_before = shot.audio
        if audio is not None:
            shot.audio = _inside_folder(shot.folder, Path(audio))
        dub = None if shot.audio_path is None else load_audio(shot.audio_path)
        painted = {}
        pattern = self._paint_pattern(shot)
        blank = np.zeros((info.height, info.width), np.float32)
        for entry in shot.painted:
            if entry.path == pattern:  # the panel's own painting: edited in memory, written on save
                alone = dataclasses.replace(shot, painted=[entry])
                for number in range(entry.frames[0], entry.frames[1] + 1):
                    painted[number] = alone.apply_painted(blank, number)
        self.shot, self.info, self.audio, self.painted = shot, info, dub, painted
        self.frames = FrameCache(shot.plate, info)
        self.track = None
        self.undo.clear()
        if shot.audio != audio_before:
            self.undo.resetClean()  # the new dub audio is not in the sidecar yet
        self.frame = first
        self.opened.emit()
        self.frameChanged.emit(self.frame)
        cached = self._cached_track()
        if cached is not None:
            self.set_track(cached)
        else:
            self.analysisNeeded.emit()

    def _cached_track(self) -> Track | None:
        path = self.shot.track_path()
        if not path.is_file():
            return None
        try:
            track = Track.load(path)
        except FaceError:
            return None
        return track if self.shot.track_mismatch(track, self.range) is None else None

    def set_track(self, track: Track) -> None:
        self.track = track
        if self.shot.face >= len(track.faces) and track.faces:
            self.shot.face = 0
        self.trackChanged.emit()
        self.edited.emit()

    @property
    def is_open(self) -> bool:
        return self.shot is not None

    @property
    def range(self) -> tuple[int, int]:
        if self.shot is None:
            return 0, 0
        return self.shot.frames or (self.info.first, self.info.last)

    @property
    def fps(self) -> float:
        return self.info.fps if self.info else 24.0

    # ------------------------------------------------------------------------------ frames

    def set_frame(self, frame: int) -> None:
        first, last = self.range
        frame = int(min(max(frame, first), last))
        if frame != self.frame:
            self.frame = frame
            self.frameChanged.emit(frame)

    def image(self, frame: int | None = None) -> np.ndarray:
        """The display image (uint8 RGB) of a frame."""
        return self.frames.image(self.frame if frame is None else frame)

    def time(self, frame: int) -> float:
        """Seconds from the shot's first frame (where the dub audio starts)."""
        return (frame - self.range[0]) / self.fps

    def faces_on(self, frame: int) -> list[tuple[int, np.ndarray]]:
        """(face id, (478, 3) landmarks) of every face found on a frame."""
        if self.track is None:
            return []
        index = self.track.index(frame)
        return [(i, f.landmarks[index]) for i, f in enumerate(self.track.faces) if f.present[index]]

    def face_at(self, x: float, y: float, frame: int | None = None) -> int | None:
        """The id of the face whose outline box holds plate point (x, y), the smallest one first."""
        hits = []
        for face_id, points in self.faces_on(self.frame if frame is None else frame):
            (x0, y0), (x1, y1) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
            if x0 <= x <= x1 and y0 <= y <= y1:
                hits.append(((x1 - x0) * (y1 - y0), face_id))
        return min(hits)[1] if hits else None

    def _shape(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def auto_mask(self, frame: int) -> np.ndarray | None:
        """The automatic pose-aware mask (no overrides) of the chosen face; None without a face."""
        face, index = self._face_index(frame)
        return None if face is None else face.mask(index, self._shape())

    def final_mask(self, frame: int) -> np.ndarray | None:
        """The mask the render blends with on this frame: overrides, then painted masks; zero where
        the frame is bypassed; None without a face."""
        face, index = self._face_index(frame)
        if self.shot.bypassed(frame):
            return np.zeros(self._shape(), np.float32)
        if frame in self.painted:
            return self.painted[frame]
        if face is None:
            return None
        mask = face.mask(index, self._shape(), None, self.shot.overrides(frame))
        others = [p for p in self.shot.painted if p.path != self._paint_pattern(self.shot)]
        return dataclasses.replace(self.shot, painted=others).apply_painted(mask, frame)

    def _face_index(self, frame: int):
        if self.track is None or not self.track.faces:
            return None, None
        index = self.track.index(frame)
        face = self.track.face(self.shot.face)
        return (face, index) if face.present[index] else (None, None)

    # ------------------------------------------------------------------------------ undoable edits

    def _snapshot(self) -> _State:
        shot = self.shot
        return _State(copy.deepcopy(shot.mask), copy.deepcopy(shot.motion), list(shot.bypass), shot.face, shot.reference,
                      shot.audio, list(shot.appearance), dict(self.painted))

    def _restore(self, state: _State) -> None:
        shot = self.shot
        shot.mask, shot.motion = copy.deepcopy(state.mask), copy.deepcopy(state.motion)
        shot.bypass, shot.face = list(state.bypass), state.face
        shot.reference, shot.audio, shot.appearance = state.reference, state.audio, list(state.appearance)
        self.painted = dict(state.painted)
        self._sync_painted_entries()
        self.edited.emit()

    def edit(self, text: str, change, merge: str | None = None) -> None:
        """Apply `change()` to the shot as one undoable step."""
        before = self._snapshot()
        change()
        after = self._snapshot()
        self._restore(before)  # the command's redo applies it (and emits `edited`)
        if not after.same(before):
            self.undo.push(ShotEdit(self, text, before, after, merge))

    # mask and motion controls -------------------------------------------------

    def channels(self, control: str) -> dict:
        """The shot's dict holding a control: its mask controls or its motion controls."""
        return self.shot.motion if control in MOTION_CONTROLS else self.shot.mask

    def value(self, control: str, frame: int | None = None) -> float | None:
        frame = self.frame if frame is None else frame
        on_frame = self.shot.motion_controls(frame) if control in MOTION_CONTROLS else self.shot.overrides(frame)
        return getattr(on_frame, control)

    def keys(self, control: str) -> list[int]:
        channel = self.channels(control).get(control)
        return [k[0] for k in channel.keys] if isinstance(channel, Keyframes) else []

    def key_frames(self, controls: tuple[str, ...] = CONTROLS) -> set[int]:
        return {frame for control in controls for frame in self.keys(control)}

    def interpolation(self, control: str) -> str | None:
        channel = self.channels(control).get(control)
        return channel.interpolation if isinstance(channel, Keyframes) else None

    def set_value(self, control: str, value: float | None, frame: int | None = None, gesture: int | None = None) -> None:
        """Set a control on a frame: a keyed control gets a key there; otherwise the constant changes.
        feather None: automatic. Successive calls with the same `gesture` (one slider drag) are one undo step."""
        frame = self.frame if frame is None else frame
        value = _checked(control, value)

        def change():
            channels = self.channels(control)
            channel = channels.get(control)
            if isinstance(channel, Keyframes) and value is not None:
                _put_key(channel, frame, value)
            else:
                channels[control] = value
            self._drop_defaults()

        self.edit(f"{_label(control)} {_show(value)}" + (f" at {frame}" if self.keys(control) and value is not None else ""),
                  change, merge=None if gesture is None else f"{control}@{frame if self.keys(control) else ''}#{gesture}")

    def set_key(self, control: str, frame: int | None = None, value: float | None = None) -> None:
        """Key a control at a frame (at its current value there unless given)."""
        frame = self.frame if frame is None else frame
        value = _checked(control, self._numeric(control, frame) if value is None else value)

        def change():
            channels = self.channels(control)
            channel = channels.get(control)
            if isinstance(channel, Keyframes):
                _put_key(channel, frame, value)
            else:
                channels[control] = Keyframes([(frame, value)], "linear")

        self.edit(f"key {_label(control)} at {frame}", change)

    def remove_key(self, control: str, frame: int | None = None) -> None:
        frame = self.frame if frame is None else frame
        channels = self.channels(control)
        channel = channels.get(control)
        if not isinstance(channel, Keyframes) or frame not in self.keys(control):
            return

        def change():
            keys = [k for k in channel.keys if k[0] != frame]
            held = self.value(control, frame)
            channels[control] = Keyframes(keys, channel.interpolation) if keys else held
            self._drop_defaults()

        self.edit(f"remove {_label(control)} key at {frame}", change)

    def set_interpolation(self, control: str, interpolation: str) -> None:
        channels = self.channels(control)
        channel = channels.get(control)
        if isinstance(channel, Keyframes) and channel.interpolation != interpolation:
            self.edit(f"{_label(control)} {interpolation}",
                      lambda: channels.__setitem__(control, Keyframes(list(channel.keys), interpolation)))

    def _numeric(self, control: str, frame: int) -> float:
        """A control's value on a frame as a number (an automatic feather as the pixels it comes to)."""
        value = self.value(control, frame)
        if value is None:  # automatic feather: what lower_face_mask would use
            from lipsync_core.face.geometry import head_pose
            from lipsync_core.face.landmarks import face_size
            from lipsync_core.face.mask import DEFAULT_FEATHER

            face, index = self._face_index(frame)
            if face is None:
                return 10.0
            value = DEFAULT_FEATHER * head_pose(face.landmarks[index], face.shape)[2] * float(face_size(face.shape))
            value = round(value, 1)
        return value

    def _drop_defaults(self) -> None:
        """Constants at their default leave the sidecar (it stays short and readable)."""
        for control in CONTROLS + MOTION_CONTROLS:
            channels = self.channels(control)
            if control in channels and not isinstance(channels[control], Keyframes):
                if channels[control] == DEFAULTS[control]:
                    del channels[control]

    # face, bypass --------------------------------------------------------------

    def choose_face(self, face_id: int) -> None:
        if self.track is not None and 0 <= face_id < len(self.track.faces) and face_id != self.shot.face:
            self.edit(f"dub face {face_id}", lambda: setattr(self.shot, "face", face_id))

    def set_audio(self, path: str | Path) -> None:
        relative = _inside_folder(self.shot.folder, Path(path))
        self.audio = load_audio(self.shot.folder / relative)
        self.edit(f"dub audio {Path(relative).name}", lambda: setattr(self.shot, "audio", relative))

    def add_appearance(self, path: str | Path) -> None:
        """Add a clip of the actor whose mouths the render may take (the sidecar's appearance list). It stays where
        it is (footage is large, and shared by the actor's shots): named relative to the shot folder when inside it,
        else by its full path. Whether it shows this shot's actor is checked by the render."""
        path = Path(path).absolute()
        with open_plate(path):
            pass  # opened to check it: a file that is not footage is refused now, not at render time
        if path.resolve() == self.shot.plate.resolve():
            raise ShotError(f"{path} is the shot's plate: its frames are used anyway")
        folder = self.shot.folder.resolve()
        name = path.resolve().relative_to(folder).as_posix() if path.resolve().is_relative_to(folder) else str(path)
        if name not in self.shot.appearance:
            self.edit(f"add footage {path.name}", lambda: self.shot.appearance.append(name))

    def remove_appearance(self, name: str) -> None:
        if name in self.shot.appearance:
            self.edit(f"remove footage {Path(name).name}", lambda: self.shot.appearance.remove(name))

    def add_bypass(self, first: int, last: int) -> None:
        first, last = sorted((int(first), int(last)))
        self.edit(f"bypass {first}-{last}", lambda: setattr(self.shot, "bypass", _merged(self.shot.bypass + [(first, last)])))

    def remove_bypass(self, first: int, last: int) -> None:
        """Un-bypass frames first..last (splitting ranges that reach past them)."""
        def change():
            kept = []
            for a, b in self.shot.bypass:
                if b < first or a > last:
                    kept.append((a, b))
                    continue
                if a < first:
                    kept.append((a, first - 1))
                if b > last:
                    kept.append((last + 1, b))
            self.shot.bypass = kept

        self.edit(f"un-bypass {first}-{last}", change)

    # painting ------------------------------------------------------------------

    def begin_stroke(self) -> bool:
        """Start a brush stroke on the current frame: from its painted mask, else its final mask."""
        base = self.final_mask(self.frame)
        if base is None or self.shot.bypassed(self.frame):
            return False
        self._stroke = (self._snapshot(), base.copy())
        return True

    def stroke(self, points: list[tuple[float, float]], radius: float, erase: bool) -> None:
        """Paint (or erase) along plate points, live on the viewer; one undo step per stroke."""
        if self._stroke is None:
            return
        canvas = self._stroke[1]
        value = 0.0 if erase else 1.0
        pts = [(int(round(x * 16)), int(round(y * 16))) for x, y in points]
        thickness = max(1, int(round(2 * radius)))
        if len(pts) == 1:
            cv2.circle(canvas, pts[0], int(round(radius * 16)), value, -1, cv2.LINE_AA, 4)
        for a, b in zip(pts, pts[1:]):
            cv2.line(canvas, a, b, value, thickness, cv2.LINE_AA, 4)
        self.painted[self.frame] = canvas
        self.edited.emit()

    def end_stroke(self, erase: bool = False) -> None:
        if self._stroke is None:
            return
        before, canvas = self._stroke
        self._stroke = None
        after = self._snapshot()
        after.painted[self.frame] = canvas.copy()
        self._restore(before)
        self.undo.push(ShotEdit(self, f"{'erase' if erase else 'paint'} mask at {self.frame}", before, after, None))

    def clear_paint(self, frame: int | None = None) -> None:
        frame = self.frame if frame is None else frame
        if frame in self.painted:
            self.edit(f"clear paint at {frame}", lambda: self.painted.pop(frame))

    @staticmethod
    def _paint_pattern(shot: Shot) -> str:
        name = re.sub(r"[#%]", "_", shot.path.name[: -len(".lipsync.json")] if shot.path.name.endswith(".lipsync.json") else shot.path.stem)
        return f"{PAINT_FOLDER}/{name}.paint.####.png"

    def _sync_painted_entries(self) -> None:
        """The sidecar's painted list: other tools' entries as they were, then the panel's, one entry
        per run of consecutive painted frames (listed last: they win where ranges overlap)."""
        pattern = self._paint_pattern(self.shot)
        entries = [p for p in self.shot.painted if p.path != pattern]
        for first, last in _runs(sorted(self.painted)):
            entries.append(PaintedMask(pattern, (first, last), "replace"))
        self.shot.painted = entries

    # ------------------------------------------------------------------------------ saving

    @property
    def dirty(self) -> bool:
        return not self.undo.isClean()

    def save(self) -> Path:
        """Write the painted masks, then the sidecar (atomically); return the sidecar's path."""
        shot = self.shot
        pattern = self._paint_pattern(shot)
        folder = shot.folder / PAINT_FOLDER
        if self.painted:
            folder.mkdir(exist_ok=True)
        for frame, mask in self.painted.items():
            value = np.round(np.clip(mask, 0, 1) * 65535).astype(np.uint16)
            write_png(shot.folder / _frame_file(pattern, frame), np.dstack([value] * 3))
        prefix, suffix = pattern.split("####")
        for stale in folder.glob(Path(prefix).name + "*" + suffix) if folder.is_dir() else []:
            number = stale.name[len(Path(prefix).name): -len(suffix)]
            if number.isdigit() and int(number) not in self.painted:
                stale.unlink()
        self._sync_painted_entries()
        path = shot.save()
        self.undo.setClean()
        self.saved.emit(str(path))
        return path


def _inside_folder(folder: Path, path: Path) -> str:
    """The path relative to the shot folder; a file from elsewhere is copied into the folder's audio/
    (the sidecar's paths stay inside the shot folder, so the folder moves and versions as a whole)."""
    folder, path = folder.resolve(), path.resolve()
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if not path.is_relative_to(folder):
        target = folder / "audio" / path.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            shutil.copy2(path, target)
        path = target
    return path.relative_to(folder).as_posix()


def _frame_file(pattern: str, frame: int) -> str:
    return pattern.replace("####", f"{frame:04d}")


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _put_key(channel: Keyframes, frame: int, value: float) -> None:
    keys = [k for k in channel.keys if k[0] != frame] + [(frame, value)]
    channel.keys = sorted(keys)


def _checked(control: str, value: float | None) -> float | None:
    if value is None:
        if control != "feather":
            raise ShotError(f"{'motion' if control in MOTION_CONTROLS else 'mask'}.{control}: needs a number")
        return None
    low, high = LIMITS[control]
    return float(min(max(float(value), low), high))


def _label(control: str) -> str:
    return control.replace("_", " ")


def _show(value: float | None) -> str:
    return "auto" if value is None else f"{value:g}"

