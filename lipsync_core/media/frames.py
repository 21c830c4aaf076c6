"""One frame source for every kind of plate: video files (PyAV) and image sequences (EXR, PNG, ...).

`open_plate(path)` returns a `Plate`: iterate it for `Frame`s, read `plate.info` for the facts a
dubber needs. Frames stream: memory does not grow with the length of the clip.

Frame numbers are the plate's own: 1001-based sequences stay 1001-based; the frames of a video file
are numbered 0, 1, 2, ... in presentation order. `Frame.time` is seconds from the plate's first frame.
For a video, `PlateInfo.start_time` says where that first frame sits on the file's own timeline, so
the file's own audio lines up with `load_audio(path, offset_s=plate.info.start_time)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from ..errors import MediaError
from .images import read_exr_header, read_image
from .inputs import require_file

IMAGE_EXTENSIONS = {".exr", ".png", ".tif", ".tiff", ".jpg", ".jpeg"}
# A sequence carries no rate of its own unless its EXR header says so; 24 is the film default.
DEFAULT_SEQUENCE_FPS = 24.0
# Frame steps that differ from the typical step by more than this fraction mean variable frame rate
# (a tick of rounding in a container's time base must not count as variable).
VFR_TOLERANCE = 0.1


@dataclass(frozen=True)
class Frame:
    number: int
    time: float
    image: np.ndarray


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int  # the stream's index among the file's audio streams
    codec: str
    sample_rate: int
    channels: int
    start_time: float  # seconds on the file's timeline
    duration: float | None  # seconds, None when the container does not say


@dataclass(frozen=True)
class PlateInfo:
    """What the plate serves. For a range or a conformed video, first/last/frame_count/duration
    describe the frames served, while `variable_fps` and `source_fps` describe the file."""

    path: Path
    kind: str  # 'video' | 'sequence'
    container: str
    codec: str
    width: int
    height: int
    fps: float  # the rate frames are served at (nominal rate for an unconformed variable-rate video)
    variable_fps: bool
    first: int
    last: int
    frame_count: int
    duration: float  # seconds covered by the frames served
    audio: tuple[AudioStreamInfo, ...]
    dtype: str  # numpy dtype of Frame.image
    channels: int  # 3 (RGB) or 4 (RGBA)
    start_time: float = 0.0  # seconds on the file's timeline where frame time 0 lies (video only)
    source_fps: float | None = None  # the file's average rate, before conforming (video only)
    conformed: bool = False
    fps_range: tuple[float, float] | None = None  # the slowest and fastest rate between two frames (video only)
    # Degrees the file's display matrix turns its stored picture clockwise (a phone's portrait clip: 90).
    # Frames are served turned upright: width and height are those of the upright picture.
    rotation: int = 0
    warnings: tuple[str, ...] = ()  # problems found while opening that did not stop it (a truncated file)


class Plate:
    """Iterable over `Frame`s; a context manager. Iterating again starts again from the first frame."""

    def __init__(self, info: PlateInfo, numbers: np.ndarray, times: np.ndarray, reader,
                 positions: np.ndarray | None = None):
        self.info = info
        self._numbers = numbers
        self._times = times
        self._reader = reader  # callable(positions, ascending) -> iterator of their images
        self._positions = np.arange(len(numbers)) if positions is None else positions  # the frames served
        self._active: list[Iterator] = []

    def only(self, numbers: Iterable[int]) -> Plate:
        """This plate serving only the frames `numbers` it holds (open_plate's `only`)."""
        wanted = np.fromiter(numbers, np.int64)
        keep = self._positions[np.isin(self._numbers[self._positions], wanted)]
        return Plate(self.info, self._numbers, self._times, self._reader, keep)

    def __len__(self) -> int:
        return len(self._positions)

    def __iter__(self) -> Iterator[Frame]:
        if not len(self._positions):
            return
        images = self._reader(self._positions)
        self._active.append(images)
        try:
            for position, image in zip(self._positions, images):
                yield Frame(int(self._numbers[position]), float(self._times[position]), image)
        finally:
            images.close()
            self._active.remove(images)

    def close(self) -> None:
        for images in list(self._active):
            images.close()

    def __enter__(self) -> Plate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_plate(
    path: str | Path, frames: tuple[int, int] | None = None, conform_fps: float | None = None,
    only: Iterable[int] | None = None,
) -> Plate:
    """Open a video file, a sequence pattern (`plate.####.exr`, `plate.%04d.png`) or one file of a sequence.

    frames: inclusive (first, last) in the plate's own numbering (after conforming, for a conformed video).
    conform_fps: for a video, serve frames at this constant rate, duplicating or dropping frames by
    timestamp (each output frame shows the source frame nearest its time); for a sequence, the rate
    the sequence runs at.
    only: serve just these frame numbers (those within `frames`; `info` still describes the range): the
    frames between them are decoded but not turned into pictures (video), or not read at all (sequence).
    """
    path = Path(path)
    if _is_sequence(path):
        plate = _open_sequence(path, frames, conform_fps)
    else:
        plate = _open_video(path, frames, conform_fps)
    return plate if only is None else plate.only(only)


def _is_sequence(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _select(path: Path, numbers: np.ndarray, frames: tuple[int, int] | None) -> np.ndarray:
    """Positions of the frames in `frames` (inclusive), or an error naming what the plate holds."""
    if frames is None:
        return np.arange(len(numbers))
    first, last = frames
    if first > last:
        raise MediaError(f"{path}: frame range {first}-{last} is empty (first is after last)")
    if first < numbers[0] or last > numbers[-1]:
        raise MediaError(
            f"{path}: frame range {first}-{last} is outside the plate, which holds frames "
            f"{numbers[0]}-{numbers[-1]}"
        )
    return np.flatnonzero((numbers >= first) & (numbers <= last))


# ----------------------------------------------------------------------------------------- video


def _open_container(path: Path):
    require_file(path)
    try:
        return av.open(str(path))
    except av.FFmpegError as error:
        raise MediaError(f"{path}: cannot be read as video ({error})") from error


@dataclass(frozen=True)
class _VideoScan:
    """What reading a video's packets (without decoding) tells: every frame's presentation time."""

    pts: np.ndarray  # sorted, in stream ticks
    keyframes: np.ndarray  # pts of the frames a decoder can start from
    last_duration: int  # ticks the last frame lasts, 0 when unknown
    time_base: float
    codec: str
    width: int
    height: int
    container: str
    audio: tuple[AudioStreamInfo, ...]
    warnings: tuple[str, ...]
    rotation: int  # clockwise degrees to play upright (0, 90, 180, 270)
    bits: int  # bits per component of the decoded picture (8, 10, 12, ...)


def _scan_video(path: Path) -> _VideoScan:
    with _open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        pts, keyframes, last_duration, present = [], [], 0, 0
        try:
            for packet in container.demux(stream):
                present += packet.size > 0
                # Packets marked discard lie before an edit list's start: the decoder drops them.
                if packet.size == 0 or packet.is_discard or packet.pts is None:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
                last_duration = packet.duration or 0
        except av.FFmpegError as error:
            raise MediaError(f"{path}: video data is damaged after {len(pts)} frames ({error})") from error
        if not pts:
            raise MediaError(f"{path}: video stream holds no frames")
        notes = ()
        if stream.frames > present:
            notes = (
                f"the file's index lists {stream.frames} frames but only {present} are present: "
                "the file looks truncated",
            )
        audio = tuple(_audio_stream_info(i, s) for i, s in enumerate(container.streams.audio))
        # FFmpeg names a demuxer by every extension it serves ("mov,mp4,m4a,..."): keep the one in use.
        names = container.format.name.split(",")
        container_name = path.suffix.lower().lstrip(".") if path.suffix.lower().lstrip(".") in names else names[0]
        rotation, bits = _picture_facts(path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        return _VideoScan(
            pts=np.sort(np.asarray(pts, dtype=np.int64)), keyframes=np.sort(np.asarray(keyframes, dtype=np.int64)),
            last_duration=last_duration, time_base=float(stream.time_base), codec=stream.codec_context.name,
            width=width, height=height, container=container_name, audio=audio, warnings=notes, rotation=rotation,
            bits=bits,
        )


def _picture_facts(path: Path) -> tuple[int, int]:
    """(rotation, bits) of the first decoded frame: the display matrix a phone writes for a portrait clip, and
    the depth of the picture (both come with the decoded frame, whatever the container or codec)."""
    with _open_container(path) as container:
        for frame in _decoded_frames(path, container, container.streams.video[0]):
            # FFmpeg's angle is counter-clockwise; flips in the matrix (mirrored footage) are not undone.
            rotation = -int(round(frame.rotation / 90)) * 90 % 360
            return rotation, max(component.bits for component in frame.format.components)
    raise MediaError(f"{path}: no video frame could be decoded")


def _audio_stream_info(index: int, stream) -> AudioStreamInfo:
    tb = stream.time_base
    start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    duration = float(stream.duration * tb) if stream.duration else None
    return AudioStreamInfo(
        index, stream.codec_context.name, stream.codec_context.sample_rate, stream.codec_context.channels,
        start, duration,
    )


def _open_video(path: Path, frames: tuple[int, int] | None, conform_fps: float | None) -> Plate:
    scan = _scan_video(path)
    pts, last_duration, tb = scan.pts, scan.last_duration, scan.time_base
    steps = np.diff(pts)
    typical_step = float(np.median(steps)) if len(steps) else float(last_duration or 1 / tb / 25)
    variable = bool(len(steps) and np.any(np.abs(steps - typical_step) > VFR_TOLERANCE * typical_step))
    nominal_fps = 1.0 / (typical_step * tb)
    source_times = (pts - pts[0]) * tb
    end_step = last_duration if last_duration and not variable else typical_step
    source_duration = float((pts[-1] - pts[0] + end_step) * tb)

    if conform_fps:
        count = max(1, int(round(source_duration * conform_fps)))
        times = np.arange(count) / conform_fps
        # Each output frame shows the source frame whose time is nearest. A tie (within a microsecond,
        # so float rounding cannot decide it) goes to the earlier frame: the one on screen at that time.
        right = np.clip(np.searchsorted(source_times, times, side="left"), 1, len(pts) - 1)
        left = right - 1
        nearer_left = (times - source_times[left]) <= (source_times[right] - times) + 1e-6
        sources = np.where(nearer_left, left, right) if len(pts) > 1 else np.zeros(count, dtype=int)
        numbers, fps = np.arange(count), float(conform_fps)
    else:
        times, sources, numbers, fps = source_times, np.arange(len(pts)), np.arange(len(pts)), nominal_fps

    chosen = _select(path, numbers, frames)
    numbers, times, sources = numbers[chosen], times[chosen], sources[chosen]
    if conform_fps:
        duration = len(numbers) / fps
    else:
        ends = np.append(source_times[1:], source_duration)
        duration = float(ends[sources[-1]] - times[0])

    info = PlateInfo(
        path=path, kind="video", container=scan.container, codec=scan.codec, width=scan.width, height=scan.height,
        fps=fps, variable_fps=variable, first=int(numbers[0]), last=int(numbers[-1]),
        frame_count=len(numbers), duration=duration, audio=scan.audio, dtype="uint16" if scan.bits > 8 else "uint8",
        channels=3,
        start_time=float(pts[0] * tb), source_fps=len(pts) / source_duration, conformed=bool(conform_fps),
        fps_range=(1 / float(steps.max() * tb), 1 / float(steps.min() * tb)) if len(steps) else None,
        warnings=scan.warnings, rotation=scan.rotation,
    )
    # High-bit-depth video (10-bit, 12-bit) is served as 16-bit RGB: its precision reaches 16-bit and float outputs.
    picture = "rgb48le" if scan.bits > 8 else "rgb24"
    return Plate(info, numbers, times, lambda positions: _decode_video(path, pts, scan.keyframes, sources[positions], picture,
                                                                  scan.rotation))


def _decode_video(
    path: Path, pts: np.ndarray, keyframes: np.ndarray, sources: np.ndarray, picture: str, rotation: int
) -> Iterator[np.ndarray]:
    """RGB images (`picture`: rgb24 or rgb48le) for source frame indices `sources` (non-decreasing; a repeat
    duplicates a frame, a skipped index drops one), turned `rotation` degrees clockwise: upright.

    A range that starts late seeks to the keyframe before it. Seeking is approximate in some
    containers (MPEG program streams): when it does not land before the first wanted frame, decoding
    starts again from the beginning, which is always right."""
    index_of = {int(p): i for i, p in enumerate(pts)}
    first, last = int(sources[0]), int(sources[-1])
    repeats = np.bincount(sources - first, minlength=last - first + 1)
    next_wanted = first  # the lowest source index not yet delivered
    seek = first > 0
    while True:
        restart = False
        with _open_container(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if seek:
                earlier = keyframes[keyframes <= pts[first]]
                container.seek(int(earlier[-1] if len(earlier) else pts[0]), stream=stream, backward=True)
            position = -1
            for frame in _decoded_frames(path, container, stream):
                if frame.pts is None and seek:
                    restart = True  # without timestamps only counting from the start places frames
                    break
                position = position + 1 if frame.pts is None else index_of.get(frame.pts, position + 1)
                if position < next_wanted:
                    continue
                if position > next_wanted:
                    if seek and next_wanted == first:
                        restart = True  # the seek landed past the first wanted frame
                        break
                    raise MediaError(f"{path}: frame {next_wanted} could not be decoded (damaged data)")
                next_wanted = position + 1
                if not repeats[position - first]:
                    continue  # decoded only to reach the next wanted frame: the picture conversion costs most
                # The frame's own range tag: full-range footage tagged as such must not be expanded again.
                image = frame.to_ndarray(format=picture, src_color_range=frame.color_range)
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=-rotation // 90))
                for _ in range(repeats[position - first]):
                    yield image
                if position >= last:
                    return
            else:
                restart = seek and next_wanted == first  # the seek found nothing wanted before the end
        if not restart:
            raise MediaError(
                f"{path}: video ends after frame {next_wanted - 1}, before frame {last} "
                "(the file looks truncated or damaged)"
            )
        seek = False


def _decoded_frames(path: Path, container, stream):
    try:
        yield from container.decode(stream)
    except av.FFmpegError as error:
        raise MediaError(f"{path}: video data is damaged ({error})") from error


# -------------------------------------------------------------------------------------- sequences

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0?\d*)d")
_NUMBERED_NAME = re.compile(r"^(.*?)(\d+)(\.[^.]+)$")


def sequence_name(path: Path) -> tuple[str, int, str] | None:
    """(prefix, padding, suffix) of a pattern (`plate.####.exr`, `plate.%04d.png`) or of one numbered file of a
    sequence (`plate.1001.exr`); None for a name without a frame number."""
    name = path.name
    hashes, printf = _HASHES.search(name), _PRINTF.search(name)
    if hashes or printf:
        match = hashes or printf
        padding = len(match.group(0)) if hashes else int(match.group(1) or 1)
        return name[: match.start()], padding, name[match.end() :]
    numbered = _NUMBERED_NAME.match(name)
    if not numbered:
        return None
    prefix, digits, suffix = numbered.groups()
    return prefix, len(digits), suffix


def sequence_files(path: Path) -> dict[int, Path]:
    """Frame number -> file for a pattern (`plate.####.exr`, `plate.%04d.png`) or any one file of a
    sequence (`plate.1001.exr`: its numbered siblings). A file without a number is a one-frame plate."""
    named = sequence_name(path)
    if named is None:
        require_file(path)
        return {0: path}
    prefix, padding, suffix = named
    pattern = re.compile(re.escape(prefix) + r"(\d{%d,})" % padding + re.escape(suffix) + "$")
    directory = path.parent
    if not directory.is_dir():
        raise MediaError(f"{path}: folder {directory} not found")
    files = {}
    for candidate in directory.iterdir():
        found = pattern.match(candidate.name)
        if found:
            files[int(found.group(1))] = candidate
    if not files:
        raise MediaError(f"{path}: no frames of this sequence found in {directory}")
    return dict(sorted(files.items()))


def _ranges_text(numbers) -> str:
    """'1003-1005, 1010' for a sorted list of frame numbers."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def _open_sequence(path: Path, frames: tuple[int, int] | None, fps: float | None) -> Plate:
    files = sequence_files(path)
    all_numbers = np.fromiter(files, dtype=np.int64)
    numbers = all_numbers[_select(path, all_numbers, frames)]
    missing = sorted(set(range(int(numbers[0]), int(numbers[-1]) + 1)) - set(numbers.tolist()))
    if missing:
        raise MediaError(f"{path}: frames {_ranges_text(missing)} are missing from the sequence")
    first_file = files[int(numbers[0])]
    sample = read_image(first_file)
    header = read_exr_header(first_file) if first_file.suffix.lower() == ".exr" else {}
    if not fps:
        # EXR carries the shot's rate when the writing application filled it in.
        rate = header.get("framesPerSecond")
        fps = float(rate[0]) / float(rate[1]) if rate is not None else DEFAULT_SEQUENCE_FPS
    info = PlateInfo(
        path=path, kind="sequence", container="image sequence", codec=first_file.suffix.lower().lstrip("."),
        width=sample.shape[1], height=sample.shape[0], fps=float(fps), variable_fps=False,
        first=int(numbers[0]), last=int(numbers[-1]), frame_count=len(numbers), duration=len(numbers) / fps,
        audio=(), dtype=str(sample.dtype), channels=sample.shape[2],
    )
    times = (numbers - all_numbers[0]) / fps
    paths = [files[int(n)] for n in numbers]
    return Plate(info, numbers, times, lambda positions: _read_sequence([paths[p] for p in positions], sample.shape, sample.dtype))


def _read_sequence(paths: list[Path], shape: tuple, dtype) -> Iterator[np.ndarray]:
    for path in paths:
        image = read_image(path)
        if image.shape != shape or image.dtype != dtype:
            raise MediaError(
                f"{path}: is {image.shape[1]}x{image.shape[0]}x{image.shape[2]} {image.dtype}, but the sequence "
                f"starts as {shape[1]}x{shape[0]}x{shape[2]} {dtype}"
            )
        yield image
