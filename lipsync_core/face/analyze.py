"""The analyze operation: track the faces of a shot once, cache the track, draw a preview a person can
check, and say what was found.

    lipsync analyze PLATE [--face N] [--frames 1001-1100] [-o track.npz] [--no-preview] [--force]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import FaceError
from ..media.destination import check_writable, make_folder, write_failed
from ..media.frames import _ranges_text, open_plate
from ..media.locks import cache_lock
from ..media.ocio import PlateSpace, plate_space, require_float
from ..media.writers import open_writer
from ..shot import Shot
from .geometry import euler_angles, head_pose
from .mask import mask_polygon
from .track import Track
from .tracker import to_uint8_rgb, track_plate

PREVIEW_MAX_SIDE = 1280  # the preview is for checking by eye: no need for the plate's full size
FACE_COLOURS = [(255, 80, 80), (80, 220, 80), (80, 160, 255), (255, 200, 40), (220, 80, 255), (40, 230, 230)]


@dataclass
class Analysis:
    track: Track
    track_path: Path
    face: int
    cached: bool
    rebuilt: str | None = None  # why the cached track there was not used
    preview: Path | None = None
    shot_saved: Path | None = None
    seconds: float = 0.0

    def summary(self) -> list[str]:
        """What a person needs to know before dubbing the shot."""
        track, face = self.track, self.track.face(self.face) if self.track.faces else None
        frames = track.frames
        lines = [f"{track.plate}: frames {frames[0]}-{frames[-1]} ({len(track)} frames)"]
        how = "from the cache" if self.cached else f"in {self.seconds:.1f} s ({len(track) / max(self.seconds, 1e-9):.1f} frames/s)"
        if self.rebuilt:
            how += f"; the cached track was not used: {self.rebuilt}"
        lines.append(f"  track       {self.track_path} ({how})")
        lines.append(f"  faces seen  {len(track.faces)}")
        for i, other in enumerate(track.faces):
            chosen = "  <- dubbed" if i == self.face else ""
            lines.append(
                f"    face {i}: on {int(other.present.sum())} frames, about {other.size():.0f} px tall{chosen}"
            )
        if face is None:
            lines.append("  no face found on any frame: every frame passes through untouched")
        else:
            missing = frames[~face.present].tolist()
            partial = frames[face.partial].tolist()
            lines.append(f"  with face   {int(face.present.sum())} frames")
            lines.append(
                f"  no face     {len(missing)} frames" + (f": {_ranges_text(missing)} (passed through)" if missing else "")
            )
            if partial:
                lines.append(f"  partly out of frame: {_ranges_text(partial)} (passed through)")
            poses = np.array([euler_angles(head_pose(p, face.shape)[0]) for p in face.landmarks[face.present]])
            if len(poses):
                for name, values in zip(("yaw", "pitch", "roll"), poses.T):
                    lines.append(
                        f"  {name:<11} {values.min():+.0f} .. {values.max():+.0f} degrees (mean {values.mean():+.0f})"
                    )
        if self.preview:
            lines.append(f"  preview     {self.preview}")
        if self.shot_saved:
            lines.append(f"  shot        {self.shot_saved}")
        return lines


def shot_track(
    plate: Path, shot: Shot, span: tuple[int, int], progress: Callable[[int, int], None] | None = None,
    notes: list[str] | None = None, space: PlateSpace | None = None,
) -> Track:
    """The shot's face track over `span`: the cached one when it was made on this plate, as it is now, over this
    range, read in `space` (see media.ocio), else tracked now (`progress(done, total)` per frame) and cached beside
    the sidecar where the folder allows. Why a cache there was not used is added to `notes`."""
    # A sidecar brought from elsewhere (--shot) may belong to another plate: its cache is not ours.
    cache = shot.track_path() if shot.plate.resolve() == Path(plate).resolve() else None
    if cache is None:
        return _track(plate, span, progress, space)
    # Farm chunks started together: one tracks the shot, the others wait for its cache instead of tracking too.
    with cache_lock(cache):
        if cache.is_file():
            problem = cached_track_problem(cache, shot, span, space)
            if problem is None:
                return Track.load(cache)
            if notes is not None:
                notes.append(f"{cache}: face track not used ({problem}): tracked again")
        track = _track(plate, span, progress, space)
        try:
            track.save(cache)
        except OSError:
            pass  # a read-only plate folder or a full disk: the work goes on, the next run tracks again
    return track


def _track(plate: Path, span: tuple[int, int], progress: Callable[[int, int], None] | None,
           space: PlateSpace | None) -> Track:
    total = span[1] - span[0] + 1
    return track_plate(plate, frames=span, progress=(lambda done: progress(done, total)) if progress else None,
                       space=space)


def cached_track_problem(path: Path, shot: Shot, span: tuple[int, int], space: PlateSpace | None = None) -> str | None:
    """Why the track cached at `path` cannot serve the shot over `span`, read in `space` (None when it can)."""
    try:
        return shot.track_mismatch(Track.load(path), span, space.key if space is not None else "")
    except FaceError as error:
        return str(error).removeprefix(f"{path}: ")  # unreadable, or an older format


def analyze(
    plate: str | Path,
    *,
    frames: tuple[int, int] | None = None,
    face: int | None = None,
    output: str | Path | None = None,
    shot: str | Path | None = None,
    preview: bool = True,
    force: bool = False,
    colourspace: str | None = None,
    ocio: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Analysis:
    """Track the shot's faces (or reuse the cached track), write the preview, and store a face or
    frame choice given here in the shot's sidecar. colourspace/ocio: a float plate's OpenColorIO space (media.ocio).

    progress(stage, done, total) is called per frame, stage 'analyze' then 'preview'.
    """
    progress = progress or (lambda stage, done, total: None)
    plate = Path(plate)
    the_shot = Shot.for_plate(plate, shot)
    with open_plate(plate, frames=frames or the_shot.frames) as opened:
        info = opened.info
    span = (info.first, info.last)
    space = plate_space(colourspace, ocio)
    require_float(space, plate, info.dtype)
    track_path = Path(output) if output else the_shot.track_path()

    track, started, rebuilt = None, time.perf_counter(), None
    cached = track_path.is_file() and not force
    if cached:
        rebuilt = cached_track_problem(track_path, the_shot, span, space)
        cached = rebuilt is None
    if cached:
        track = Track.load(track_path)
    preview_path = track_path.with_name(_preview_name(track_path)) if preview else None
    store_choice = face is not None or frames is not None
    # Everything this run will write is checked before the tracking, not found unwritable after it.
    writes = [path for path, written in ((track_path, not cached), (preview_path, preview), (the_shot.path, store_choice)) if written]
    for path in writes:
        make_folder(path)
        check_writable(path, 0)
    if not cached:
        track = track_plate(plate, frames=span, progress=lambda done: progress("analyze", done, info.frame_count),
                            space=space)
        try:
            track.save(track_path)
        except OSError as error:
            raise write_failed(track_path, error) from None
    result = Analysis(track, track_path, face if face is not None else the_shot.face, cached, rebuilt=rebuilt)
    result.seconds = time.perf_counter() - started
    if track.faces:
        track.face(result.face)  # a face that does not exist is an error naming the ones that do
    elif face is not None:
        raise FaceError(f"{plate}: no face was found, so face {face} cannot be chosen")

    if store_choice:
        the_shot.face = result.face
        the_shot.frames = span
        result.shot_saved = the_shot.save()
    if preview:
        result.preview = preview_path
        write_preview(
            plate, track, the_shot, result.face, result.preview, info.fps, lambda done: progress("preview", done, len(track)),
            space,
        )
    return result


def _preview_name(track_path: Path) -> str:
    name = track_path.name
    stem = name[: -len(".track.npz")] if name.endswith(".track.npz") else track_path.stem
    return stem + ".preview.mp4"


def write_preview(plate: Path, track: Track, shot: Shot, chosen: int, path: Path, fps: float, progress=None,
                  space: PlateSpace | None = None) -> None:
    """The plate with every face's landmarks and id, the chosen face's mask outline (with the shot's
    overrides) and bypassed frames marked, as an H.264 video."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(track.width, track.height))
    width, height = (int(round(track.width * scale / 2)) * 2, int(round(track.height * scale / 2)) * 2)
    # A preview is looked at once: fast encoding matters more than its size or fidelity.
    with open_plate(plate, frames=(int(track.frames[0]), int(track.frames[-1]))) as frames, open_writer(
        path, fps=fps, width=width, height=height, inputs=[plate], crf=23, preset="veryfast"
    ) as out:
        for index, frame in enumerate(frames):
            image = cv2.resize(to_uint8_rgb(frame.image, space), (width, height), interpolation=cv2.INTER_AREA)
            _draw(image, track, shot, chosen, index, frame.number, (width / track.width, height / track.height))
            out.write(image)
            if progress:
                progress(index + 1)


def _draw(image, track: Track, shot: Shot, chosen: int, index: int, number: int, scale) -> None:
    sx, sy = scale
    line = max(1, round(image.shape[0] / 400))
    for face_id, face in enumerate(track.faces):
        if not face.present[index]:
            continue
        colour = FACE_COLOURS[face_id % len(FACE_COLOURS)]
        points = face.landmarks[index][:, :2] * [sx, sy]
        for x, y in points[::2]:
            cv2.circle(image, (int(x), int(y)), 0, colour, line)
        top = points[:, 1].min()
        label = f"face {face_id}" + (" (partly out)" if face.partial[index] else "")
        cv2.putText(image, label, (int(points[:, 0].min()), max(12, int(top) - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * line, colour, line, cv2.LINE_AA)
        if face_id == chosen and not shot.bypassed(number):
            outline = mask_polygon(face.landmarks[index], overrides=shot.overrides(number), face=face.shape) * [sx, sy]
            cv2.polylines(image, [np.round(outline).astype(np.int32)], True, (255, 255, 255), line, cv2.LINE_AA)
    status = f"{number}" + ("  BYPASS" if shot.bypassed(number) else "")
    cv2.putText(image, status, (8, 8 + 14 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * line, (255, 255, 0), line, cv2.LINE_AA)


# ------------------------------------------------------------------------------------ CLI


def add_parser(subparsers) -> None:
    from ..ops.analyze import ANALYZE
    from ..ops.cli import add_command

    add_command(subparsers, ANALYZE).set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="frame", file=sys.stderr, dynamic_ncols=True)
        bars[stage].update(done - bars[stage].n)

    try:
        result = analyze(
            args.plate, frames=args.frames, face=args.face, output=args.output, shot=args.shot,
            preview=args.preview, force=args.force, colourspace=args.colourspace, ocio=args.ocio, progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()
    print("\n".join(result.summary()))
    return 0
