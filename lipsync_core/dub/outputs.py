"""The result files of a dub: which writer an output name means, and each frame converted for it.

    .mp4            H.264, 8-bit display RGB, the dub audio muxed in
    .mov            ProRes 4444, 16-bit display RGB, the blend mask as alpha, the dub audio muxed in
    name.####.exr   half or float linear RGB(A) as the plate, the blend mask as layer `lipsync.mask`,
                    the source frame's EXR header attributes kept
    name.####.png   8 or 16 bit display RGB(A) as the plate

With the facts of the render (`provenance.facts.DubFacts`) every output says what it is: a video is signed with
C2PA content credentials before it takes its name, each sequence frame carries the facts in its EXR header or PNG
text chunks (and a complete sequence is signed by its render, `provenance.sequence`), and the dubbed region of every
frame carries an invisible watermark (unless turned off).

A frame is converted only as far as the format needs: an EXR plate written to EXR, or an 8/16-bit
plate written to PNG, keeps its pixel values exactly (which is what makes "outside the mask the
output equals the input" hold bit for bit).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..face.tracker import to_uint8_rgb
from ..media.audio import decode_audio, fit_full_scale
from ..media.colour import from_display, srgb_decode, to_display
from ..media.ocio import PlateSpace
from ..media.frames import PlateInfo, sequence_files
from ..media.images import read_exr_header
from ..media.writers import open_writer
from ..ops.generate import PEAK_HANDLING
from ..provenance import watermark
from ..provenance.credentials import sign_video
from ..provenance.facts import DubFacts, file_sha256
from ..provenance.identity import signing_identity

MASK_LAYER = "lipsync.mask"
KINDS = {".mp4": "mp4", ".mov": "mov", ".exr": "exr", ".png": "png"}


def output_kind(path: Path) -> str:
    """'mp4', 'mov', 'exr' or 'png'; an error for any other name, before anything is computed."""
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise MediaError(f"{path}: unknown output type '{path.suffix}' (use .mp4, .mov, name.####.exr or name.####.png)")
    if kind in ("exr", "png") and "#" not in path.name and "%" not in path.name:
        raise MediaError(f"{path}: an image sequence output needs a frame-number pattern, e.g. out.####.{kind}")
    return kind


class DubOutput:
    """A writer for one dub, taking plate-dtype frames and their blend masks.

    Use as a context manager: leaving it by an exception removes the partial video; a sequence keeps the frames
    given before it, each written whole. Nothing half-written appears under a final name.
    """

    def __init__(self, path: Path, info: PlateInfo, audio: Path | None, audio_offset_s: float, inputs: list[Path],
                 audio_peaks: str = PEAK_HANDLING[0], facts: DubFacts | None = None, mark: bool = True,
                 space: PlateSpace | None = None):
        """space: the float plate's colourspace (media.ocio): a video or PNG output is its display image."""
        self.path = Path(path)
        self.kind = output_kind(self.path)
        self._space = space
        # The watermark is read back from what a file holds: an EXR's floats as `lipsync verify` encodes them (sRGB),
        # a video's or PNG's display pixels; so it is drawn in that encoding.
        self._mark_space = space if self.kind != "exr" else None
        options = {}
        self._facts = facts
        self._bits = watermark.payload(facts.model_sha256) if facts is not None and mark else None
        self.dubbed: list[int] = []  # frames whose pixels the dub changed
        self.identity = None
        if facts is not None:
            # Asked for before the render: a misconfigured key is an error now, not after an hour of frames.
            self.identity = signing_identity()
        if facts is not None and self.kind in ("mp4", "mov"):
            options["seal"] = self._sign
        self._plate_dtype = np.dtype(info.dtype)
        self._plate_files = sequence_files(info.path) if info.kind == "sequence" else None
        # EXR plates carry their headers (timecode, camera data) into the result, frame by frame.
        self._headers = self._plate_files if info.kind == "sequence" and info.codec == "exr" else None
        if self.kind == "exr":
            # Half keeps 11 bits: a 16-bit plate (16-bit PNG, 10- or 12-bit video) needs float to keep its precision.
            options["pixel_type"] = "float" if self._plate_dtype in (np.float32, np.uint16) else "half"
        samples, rate = None, None
        if audio is not None and self.kind in ("mp4", "mov"):
            # Muxed as the model heard it: a float dub above full scale would otherwise play as distortion.
            samples, rate = decode_audio(audio, offset_s=audio_offset_s)
            samples = fit_full_scale(samples, audio, audio_peaks)[0].T
        self._writer = open_writer(
            self.path, fps=info.fps, width=info.width, height=info.height,
            audio=samples, audio_rate=rate, inputs=inputs, **options,
        )
        # Frames are marked, converted and encoded on a thread of their own while the renderer makes the next ones:
        # x264, swscale, OpenEXR's compression and numpy let go of the GIL, so the writer takes the core the renderer
        # leaves idle (README, Performance).
        self._behind = _InOrder(self._write_frame)

    def write(self, number: int, image: np.ndarray, mask: np.ndarray | None, dubbed: bool = False) -> None:
        """Frame `number` and the blend mask it was dubbed through. Mask None: a frame already finished (a farm
        chunk joined into the movie), written as it is; `dubbed` says whether the dub changed it."""
        dubbed = bool(mask.any()) if mask is not None else dubbed
        if dubbed:
            self.dubbed.append(number)
        self._behind.put(number, image, mask, dubbed)

    def flush(self) -> None:
        """Wait until the frames given so far are written (a sequence's are then on disk); an error of theirs is
        raised here."""
        self._behind.wait()

    def _write_frame(self, number: int, image: np.ndarray, mask: np.ndarray | None, dubbed: bool) -> None:
        if dubbed:
            if self._bits is not None and mask is not None:
                image = watermark.embed(image, mask, self._bits, self._mark_space)
        text = {}
        if self._facts is not None and self.kind in ("exr", "png"):
            plate = file_sha256(self._plate_files[number]) if self._plate_files else self._facts.plate_sha256
            text = self._facts.frame_text(dubbed, plate)
        if self.kind == "mp4":
            self._writer.write(to_uint8_rgb(image, self._space))
        elif self.kind == "mov":
            rgb = _display_integer(image, np.uint16, self._space)
            alpha = np.round(np.clip(mask, 0.0, 1.0) * 65535).astype(np.uint16)
            self._writer.write(np.dstack([rgb[..., :3], alpha]))
        elif self.kind == "exr":
            # The facts last: a plate that is itself a dub must not lend this render its old ones.
            header = {**(read_exr_header(self._headers[number]) if self._headers else {}), **text}
            self._writer.write(_linear(image), number, layers={MASK_LAYER: mask}, header=header)
        else:
            self._writer.write(_display_integer(image, np.uint16 if image.dtype.kind == "f" else image.dtype, self._space),
                               number, text=text)

    def _sign(self, finished: Path) -> None:
        sign_video(finished, self.path.name, self._facts, self.dubbed, self.identity)

    def __enter__(self) -> DubOutput:
        self._writer.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is not None:
                # A failed or cancelled render: a video is thrown away, so its frames in flight are not wanted; a
                # sequence keeps every frame the render finished (a resumed render starts after them). The render's
                # own error is the one the user sees.
                self._behind.join(drop=self.kind in ("mp4", "mov"), quiet=True)
            else:
                self._behind.join()
        except BaseException as error:  # the writer's error, or a second Ctrl-C while waiting: clean up all the same
            self._writer.__exit__(type(error), error, error.__traceback__)
            raise
        self._writer.__exit__(*exc)


class _InOrder:
    """Calls `work(*args)` for each `put`, in order, on a thread of its own. At most `depth` calls wait, so a long
    render's memory stays flat (each holds a frame and its mask: about 0.1 GB for a 4K float frame; a 720p dub ran as
    fast with two waiting as with four). The first error is raised in the caller's thread, once, at the next `put`,
    `wait` or `join`; every call after it is dropped."""

    def __init__(self, work: Callable, depth: int = 2):
        self._work = work
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._reported = False
        self._drop = False
        self._thread = threading.Thread(target=self._run, name="lipsync-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (args := self._queue.get()) is not None:
            if self._error is None and not self._drop:
                try:
                    self._work(*args)
                except BaseException as error:  # handed to the caller's thread
                    self._error = error
            self._queue.task_done()

    def put(self, *args) -> None:
        self._raise()
        self._queue.put(args)

    def wait(self) -> None:
        """Wait until every call so far is done."""
        self._queue.join()
        self._raise()

    def join(self, drop: bool = False, quiet: bool = False) -> None:
        """Wait until every call is done and end the thread. drop: skip the calls not started; quiet: raise nothing."""
        if self._thread.is_alive():
            self._drop = drop
            self._queue.put(None)
            self._thread.join()
        if not quiet:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error


def _display_integer(image: np.ndarray, dtype, space: PlateSpace | None = None) -> np.ndarray:
    """Display-encoded integer RGB(A) of `dtype` (alpha kept) from any plate image (a float one in `space`)."""
    dtype = np.dtype(dtype)
    if image.dtype == dtype:
        return image
    if image.dtype == np.uint8 and dtype == np.uint16:
        return image.astype(np.uint16) * 257  # exact: 255 -> 65535
    rgb = from_display(to_display(image, space), np.empty((0, 0, 3), dtype))
    if image.shape[-1] == 4:
        scale = np.iinfo(dtype).max
        alpha = image[..., 3:] if image.dtype.kind != "f" else np.round(np.clip(image[..., 3:], 0, 1) * scale)
        rgb = np.concatenate([rgb, alpha.astype(dtype)], axis=-1)
    return rgb


def _linear(image: np.ndarray) -> np.ndarray:
    """Scene-linear float RGB(A) for EXR: float plates as they are, integer plates sRGB-decoded (16-bit ones to
    float32, whose precision they need)."""
    if image.dtype.kind == "f":
        return image
    rgb = srgb_decode(to_display(image))
    if image.shape[-1] == 4:
        rgb = np.concatenate([rgb, image[..., 3:] / np.float32(np.iinfo(image.dtype).max)], axis=-1)
    return rgb.astype(np.float32 if image.dtype == np.uint16 else np.float16)
