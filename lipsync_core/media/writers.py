"""Writers for the results: H.264 .mp4 with the dub muxed in, ProRes 4444 .mov with alpha, EXR and PNG
sequences.

Every writer is safe to cancel: a video is written under a hidden temporary name beside the result
and renamed when closed; each frame of a sequence is written the same way, so a finished frame is
always whole (a cancelled render keeps its finished frames, which is what makes it resumable, and
never a half-written one). A writer refuses to write over any of its inputs.

    with open_writer("out.mp4", fps=25, width=1280, height=720, audio="dub.wav", inputs=[plate]) as out:
        for frame in frames:
            out.write(frame.image)

Leaving the `with` block by an exception aborts: nothing appears under the video's final name.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError
from .audio import decode_audio
from .destination import make_folder, write_failed
from .frames import IMAGE_EXTENSIONS
from .images import write_exr, write_png

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov"}
X264_LOOKAHEAD_BYTES = 256 * 2**20  # memory the H.264 encoder's lookahead may take
# Measured on 100 frames of a 720p clip at CRF 17: 1.4x the speed of "medium" for 0.16 dB less PSNR and a 7% larger
# file; "veryfast" was 2x for 0.44 dB less (README, Performance).
X264_PRESET = "faster"
# x264's own lookahead of each preset, in frames: the memory cap below only ever shortens it.
X264_PRESET_LOOKAHEAD = {"ultrafast": 0, "superfast": 0, "veryfast": 10, "faster": 20, "fast": 30, "medium": 40,
                         "slow": 50, "slower": 60, "veryslow": 60, "placebo": 60}
_FRAME_PATTERN = re.compile(r"#+|%0?\d*d")
# The frame-number part of a sequence name, however it is written: ####, %04d, or digits.
_FRAME_NUMBER = re.compile(r"(#+|%0?\d*d|\d+)(?=\.[^.]+$)")


def open_writer(
    path: str | Path,
    fps: float,
    width: int,
    height: int,
    audio: str | Path | np.ndarray | None = None,
    audio_rate: int | None = None,
    audio_offset_s: float = 0.0,
    inputs: list[str | Path] = (),
    **options,
):
    """A writer chosen by the name: `.mp4` H.264 (+AAC), `.mov` ProRes 4444 (+PCM), or a sequence
    pattern (`out.####.exr`, `out.%04d.png`).

    audio: for video files, a file to mux (its first audio stream, at its own rate and channels) or
        samples (n,) or (n, channels) float in [-1, 1] at `audio_rate`. Sample 0 plays with the first
        frame; with a file, `audio_offset_s` is the file's time that plays with the first frame.
        The track is cut or padded with silence to the length of the video.
    inputs: the plates and audio this render reads: writing over any of them is refused.
    options: passed to the writer (`crf`, `preset`, `seal` for video; `pixel_type`, `compression`, `header`
        for EXR).
    """
    path = Path(path)
    refuse_inputs(path, inputs)
    suffix = path.suffix.lower()
    if suffix in VIDEO_FORMATS or suffix in (".exr", ".png"):
        make_folder(path)
    if suffix in VIDEO_FORMATS:
        return VideoWriter(path, fps, width, height, audio, audio_rate, audio_offset_s, **options)
    if suffix in (".exr", ".png"):
        if audio is not None:
            raise MediaError(f"{path}: an image sequence cannot carry audio; write the dub beside it")
        writer = ExrSequenceWriter if suffix == ".exr" else PngSequenceWriter
        return writer(path, fps, width, height, **options)
    raise MediaError(f"{path}: unknown output type '{suffix}' (use .mp4, .mov, or a .exr/.png sequence pattern)")


def _media_key(path: Path) -> tuple:
    """What a name refers to: the file, or for any name of a sequence (pattern or one frame) the sequence."""
    path = Path(path).resolve()
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return (path.parent, _FRAME_NUMBER.sub("", path.name))
    return (path,)


def refuse_inputs(path: Path, inputs) -> None:
    """A MediaError when `path` names one of `inputs` (the same file, or any name of the same sequence)."""
    for source in inputs:
        if _media_key(path) == _media_key(Path(source)):
            raise MediaError(f"{path}: refusing to write over the input {source}; choose another output name")


def _is_pattern(path: Path) -> bool:
    return bool(_FRAME_PATTERN.search(path.name))


def _temporary(path: Path) -> Path:
    """A hidden name beside `path` that no other render uses, even one writing the same output."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.partial")


class _Writer:
    """Base: context manager that closes on success and aborts on an exception."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_Writer):
    """H.264 in .mp4 (yuv420p, BT.709, AAC audio) or ProRes 4444 in .mov (10-bit with alpha, PCM audio).

    Images: HxWx3 RGB or HxWx4 RGBA, uint8 (or uint16 for ProRes). Write frames in order.
    """

    def __init__(self, path, fps, width, height, audio=None, audio_rate=None, audio_offset_s=0.0,
                 crf: int = 17, preset: str = X264_PRESET, seal: Callable[[Path], None] | None = None):
        self.path = Path(path)
        self._seal = seal  # called with the finished temporary file before it takes the final name (signing)
        self._temp = _temporary(self.path)
        self._prores = self.path.suffix.lower() == ".mov"
        if not self._prores and (width % 2 or height % 2):
            raise MediaError(
                f"{self.path}: H.264 (4:2:0) needs an even width and height, the plate is {width}x{height}; "
                "write .mov (ProRes), EXR or PNG instead"
            )
        self._rate = Fraction(fps).limit_denominator(1001)
        self._samples, self._audio_rate = _prepare_audio(audio, audio_rate, audio_offset_s)
        self._frames = 0
        self._audio_written = 0
        try:
            self._container = av.open(str(self._temp), "w", format=VIDEO_FORMATS[self.path.suffix.lower()])
        except (av.FFmpegError, OSError) as error:
            raise MediaError(f"{self.path}: cannot create ({error})") from error
        try:
            self._add_streams(width, height, crf, preset)
        except (av.FFmpegError, ValueError) as error:
            self.abort()
            raise MediaError(f"{self.path}: cannot set up the encoder ({error})") from error

    def _add_streams(self, width: int, height: int, crf: int, preset: str) -> None:
        if self._prores:
            self._video = self._container.add_stream("prores_ks", rate=self._rate)
            self._video.pix_fmt = "yuva444p10le"
            self._video.options = {"profile": "4444", "vendor": "apl0"}
        else:
            self._video = self._container.add_stream("libx264", rate=self._rate)
            self._video.pix_fmt = "yuv420p"
            options = {"crf": str(crf), "preset": preset}
            # x264 holds each frame of its lookahead (about twice its 4:2:0 size): 40 frames of 4K are 1 GB.
            # Large frames get a shorter lookahead (4K: 10 frames); smaller ones the preset's own.
            lookahead = int(X264_LOOKAHEAD_BYTES // (width * height * 3))
            if lookahead < X264_PRESET_LOOKAHEAD[preset]:
                options["rc-lookahead"] = str(max(10, lookahead))
            self._video.options = options
            # Tag what the pixels are so players and hosts decode them as they were encoded.
            self._video.codec_context.colorspace = av.video.reformatter.Colorspace.ITU709
            self._video.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
            self._video.codec_context.color_primaries = 1  # BT.709
            self._video.codec_context.color_trc = 1  # BT.709
        self._video.width, self._video.height = width, height
        self._video.time_base = 1 / self._rate
        self._audio = None
        if self._samples is not None:
            channels = self._samples.shape[0]
            layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
            codec = "pcm_s24le" if self._prores else "aac"
            self._audio = self._container.add_stream(codec, rate=self._audio_rate, layout=layout)
            if not self._prores:
                self._audio.bit_rate = 192000 if channels > 1 else 128000
            self._audio.time_base = Fraction(1, self._audio_rate)

    def write(self, image: np.ndarray, number: int | None = None) -> None:
        """Append one frame. `number` is accepted so every writer is called alike; a video numbers its
        frames by the order they are written."""
        frame = self._to_frame(image)
        frame.pts = self._frames
        self._frames += 1
        self._mux(self._video.encode(frame))
        if self._audio is not None:
            # Keep audio level with video so the muxer can interleave without buffering the whole track.
            self._write_audio(until=int(self._frames * self._audio_rate / self._rate))

    def _to_frame(self, image: np.ndarray) -> av.VideoFrame:
        height, width = self._video.height, self._video.width
        if image.shape[:2] != (height, width) or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise MediaError(f"{self.path}: frame {self._frames} is {image.shape}, the video is {width}x{height} RGB(A)")
        if self._prores:
            if image.dtype == np.uint8:
                image = image.astype(np.uint16) * 257  # exact 8 -> 16 bit: 255 maps to 65535
            if image.shape[2] == 3:
                image = np.dstack([image, np.full(image.shape[:2], 65535, np.uint16)])
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint16), format="rgba64le")
            # One thread: the bundled swscale's sliced RGBA64 -> YUVA 4:4:4 10-bit conversion writes grey 8x1
            # streaks at the left edge of slice boundaries (rows 96 and 192 of a 288-row frame).
            return frame.reformat(format="yuva444p10le", dst_colorspace="ITU709", dst_color_range="MPEG", threads=1)
        if image.dtype != np.uint8:
            raise MediaError(f"{self.path}: H.264 takes uint8 RGB frames, got {image.dtype}; convert with colour.to_display")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:, :, :3]), format="rgb24")
        return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")

    def _write_audio(self, until: int) -> None:
        if until <= self._audio_written:
            return
        piece = self._samples[:, self._audio_written : until]
        if piece.shape[1] < until - self._audio_written:  # the dub is shorter than the video: silence
            piece = np.pad(piece, ((0, 0), (0, until - self._audio_written - piece.shape[1])))
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(piece, dtype=np.float32), format="fltp", layout=self._audio.layout.name
        )
        frame.sample_rate = self._audio_rate
        frame.pts = self._audio_written
        self._audio_written = until
        self._mux(self._audio.encode(frame))

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except (av.FFmpegError, OSError) as error:
            raise write_failed(self.path, error) from error

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._mux(self._video.encode(None))
            if self._audio is not None:
                self._write_audio(until=int(round(self._frames * self._audio_rate / self._rate)))
                self._mux(self._audio.encode(None))
            try:
                self._container.close()  # writes the index: the disk may fill up here too
            except (av.FFmpegError, OSError) as error:
                raise write_failed(self.path, error) from error
            self._container = None
            if self._seal is not None:
                self._seal(self._temp)
        except BaseException:
            self.abort()
            raise
        os.replace(self._temp, self.path)

    def abort(self) -> None:
        """Stop and remove the partial file: nothing is left under the final name."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass  # the file is being thrown away; a failure to finish it does not matter
            self._container = None
        self._temp.unlink(missing_ok=True)


def _prepare_audio(audio, rate, offset_s) -> tuple[np.ndarray | None, int | None]:
    """(channels, n) float32 samples and their rate, from a file or an array."""
    if audio is None:
        return None, None
    if isinstance(audio, (str, Path)):
        return decode_audio(audio, offset_s=offset_s)
    if rate is None:
        raise MediaError("audio samples were given without their sample rate (audio_rate)")
    samples = np.asarray(audio, dtype=np.float32)
    samples = samples[None, :] if samples.ndim == 1 else samples.T
    return samples, int(rate)


class _SequenceWriter(_Writer):
    """Writes `pattern` frame by frame; each frame goes to a temporary name, then is renamed."""

    def __init__(self, pattern, fps, width, height):
        self.path = Path(pattern)
        if not _is_pattern(self.path):
            raise MediaError(f"{self.path}: a sequence needs a frame-number pattern, e.g. name.####.exr or name.%04d.exr")
        self.fps, self.width, self.height = fps, width, height
        self._current: Path | None = None

    def frame_path(self, number: int) -> Path:
        name = self.path.name
        if "#" in name:
            hashes = name.count("#")
            name = name.replace("#" * hashes, f"{number:0{hashes}d}")
        else:
            name = name % number
        return self.path.with_name(name)

    def write(self, image: np.ndarray, number: int, **kwargs) -> None:
        if image.shape[:2] != (self.height, self.width):
            raise MediaError(f"{self.frame_path(number)}: image is {image.shape[1]}x{image.shape[0]}, the sequence is {self.width}x{self.height}")
        final = self.frame_path(number)
        self._current = _temporary(final)
        try:
            self._write_file(self._current, image, **kwargs)
            os.replace(self._current, final)
        except MediaError as error:
            if isinstance(error.__cause__, OSError):  # say the frame's own name, not its temporary one
                raise write_failed(final, error.__cause__) from error
            raise
        except OSError as error:
            raise write_failed(final, error) from error
        finally:
            if self._current.exists():
                self._current.unlink()
            self._current = None

    def close(self) -> None:
        pass  # every frame is complete once `write` returns

    def abort(self) -> None:
        if self._current is not None:
            self._current.unlink(missing_ok=True)


class ExrSequenceWriter(_SequenceWriter):
    """EXR frames: RGB/RGBA in `pixel_type` ('half' or 'float'), extra named layers (`lipsync.mask`),
    and the header attributes of a source frame when given (per frame, e.g. its timecode)."""

    def __init__(self, pattern, fps, width, height, pixel_type: str = "half", compression: str = "zip",
                 header: dict | None = None):
        super().__init__(pattern, fps, width, height)
        self._dtype = {"half": np.float16, "float": np.float32}[pixel_type]
        self._compression = compression
        self._header = header or {}

    def _write_file(self, path, image, layers: dict[str, np.ndarray] | None = None, header: dict | None = None):
        rate = Fraction(self.fps).limit_denominator(1001)
        attributes = {**self._header, **(header or {}),
                      "framesPerSecond": np.array([rate.numerator, rate.denominator], np.int32)}
        layers = {name: layer.astype(self._dtype) for name, layer in (layers or {}).items()}
        write_exr(path, image.astype(self._dtype, copy=False), layers, attributes, self._compression)


class PngSequenceWriter(_SequenceWriter):
    """PNG frames, 8 or 16 bit as the image's dtype (uint8 / uint16), with text chunks when given."""

    def _write_file(self, path, image, text: dict[str, str] | None = None):
        write_png(path, image, text)
