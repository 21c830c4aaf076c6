"""The generate operation: a plate and dub audio in, the lip-synced plate out.

`dub(...)` renders a frame range to a file and returns a `DubReport`; `Renderer` is the same work
frame by frame for callers that keep the frames (host nodes, the panel).

Per frame: the aligned crop (display RGB, 8-bit, exactly as the model was trained on it) with the
lower face blanked by the crop-space mask, the shot's reference crop and the mel window centred on
the frame's own time go through the model; the generated crop is warped back and blended into the
plate inside the feathered plate-space mask, in linear light for float plates. Outside the mask
every pixel is the plate's own.

Why frames are rendered in fixed cells: the model's codes depend on MaLS.CONTEXT neighbouring frames
each side, and a batched convolution does not give bit-identical results for a frame in batches of
different sizes. So frames are grouped in cells of `batch` frames counted from the shot's first
frame, each cell's codes come from the cell plus its context (clipped at the shot's ends), and a
cell is always decoded whole. A render of any sub-range (a farm chunk, a resumed render, one frame
for a host) then computes every frame exactly as a render of the whole shot does.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..device import pick_device, set_cpu_threads
from ..errors import FaceError, LipSyncError, MediaError, ModelError
from ..appearance.actor_clips import actor_clips, recorded_paths
from ..appearance.added import AddedClip, added_footage
from ..appearance.footage import Footage, FootageMouth
from ..appearance.render import at_plate, renderer_view
from ..face import geometry
from ..face.track import Track
from ..face.analyze import shot_track
from ..face.tracker import to_uint8_rgb
from ..media.audio import audio_for_range, fit_full_scale, load_audio, log_mel, mel_windows
from ..media.colour import composite
from ..media.destination import check_writable, make_folder, remove_folders
from ..media.frames import Frame, PlateInfo, _ranges_text, open_plate, sequence_files
from ..media.ocio import plate_space, require_float
from ..media.locks import output_lock
from ..media.writers import refuse_inputs
from ..models.actor import DEFAULT_MODEL, DEFAULT_RENDERER, is_renderer, load_generator
from ..models.mals import MaLS
from ..models.stylelipsync import StyleLipSync, footage_input, masked_input
from ..models.motion import DEFAULT_MOTION_MODEL, load_motion_model
from ..motion.curves import read_curves
from ..motion.stage import footage_shapes, shot_motion
from ..ops.generate import DEFAULT_BATCH, MOUTHS, PEAK_HANDLING
from ..provenance import sequence as sequence_credentials
from ..provenance.facts import DubFacts
from ..shot import Keyframes, Shot, validate, validate_controls
from ..train.data import to_tensor_images
from . import render_record
from .outputs import DubOutput, output_kind
from .timing import offset_seconds

STAGES = ("decode", "analyze", "features", "generate", "composite", "encode")

# How the mouth is made: from the actor's own frames, moved by the motion stage (the default), the same frames
# rendered over by the StyleLipSync renderer, or drawn by the StyleLipSync generator from the audio alone.
# 'auto': the footage, or the generator when a model is given (an actor model draws with it).
AUTO, FOOTAGE, RENDERED, GENERATED = MOUTHS

SOURCE_BYTES = 256 * 2**20  # the source frames' lower faces the footage mouth decodes in one pass over the plate

# Why a frame is passed through untouched.
NO_FACE = "no face"
PARTIAL = "face partly out of frame"
BYPASSED = "bypassed in the shot"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class Cancelled(LipSyncError):
    """The render was cancelled; nothing was left under the output's final name."""


@dataclass
class DubbedFrame:
    number: int
    image: np.ndarray  # the plate's dtype and channels
    mask: np.ndarray  # (H, W) float32 blend mask, zero where the frame passed through
    skipped: str | None  # why the frame passed through untouched, None when it was dubbed


@dataclass
class DubReport:
    plate: Path
    output: Path | None
    first: int
    last: int
    dubbed: list[int] = field(default_factory=list)
    passed: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # reason -> frames
    audio: str | None = None  # what was padded or trimmed
    resumed_from: int | None = None
    notes: list[str] = field(default_factory=list)  # how the mouth was made, and what to do about its limits
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))  # seconds per stage

    def lines(self) -> list[str]:
        """What a user reads at the end of a render."""
        rendered = len(self.dubbed) + sum(len(frames) for frames in self.passed.values())
        lines = [f"dubbed {len(self.dubbed)} of {rendered} frames rendered ({self.first}-{self.last})"]
        if self.resumed_from is not None:
            lines.append(f"resumed at frame {self.resumed_from}: frames before it were already written")
        for reason, frames in self.passed.items():
            lines.append(f"{reason} in frames {_ranges_text(sorted(frames))} (passed through)")
        if self.audio:
            lines.append(self.audio)
        lines += self.notes
        if self.output is not None:
            lines.append(f"wrote {self.output}")
        return lines


def faces_note(track: Track, chosen: int) -> str:
    """Which of several faces is dubbed, and how to choose another: face 0 is only the largest."""
    faces = "; ".join(
        f"face {i}: about {face.size():.0f} px tall, on {int(face.present.sum())} frames" for i, face in enumerate(track.faces)
    )
    return (f"{len(track.faces)} faces in the shot ({faces}): dubbing face {chosen}; choose another with --face N "
            "(the panel: click the face; a node: its face parameter)")


def load_model(path: str | Path | None, device: torch.device) -> StyleLipSync:
    """The model of a model file (default: the bundled generator) or of an actor model, in eval mode on `device`."""
    path = Path(path) if path else DEFAULT_MODEL
    if path in (DEFAULT_MODEL, DEFAULT_RENDERER) and not path.is_file():
        raise ModelError(f"the bundled model {path} is not there yet: pass a trained model with --model")
    model, _ = load_generator(path)
    return model.to(device)


def _as_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    return cancel


class Renderer:
    """One shot made ready to render: its track, reference crop, dub audio and model.

    The audio is anchored at the shot's first frame (the sidecar's range, or the plate's first frame):
    dub time = frame time - first frame's time - audio_offset. A positive offset starts the dub later.
    Rendering a sub-range never moves the audio, so chunks line up with a full render.
    """

    def __init__(
        self,
        plate: str | Path,
        audio: str | Path | None,
        *,
        shot: str | Path | None = None,
        face: int | None = None,
        audio_offset: str | float = 0.0,
        model: str | Path | None = None,
        device: str = "auto",
        batch: int = DEFAULT_BATCH,
        mask: dict[str, float | None | Keyframes] | None = None,
        mouth: str | None = None,
        motion_model: str | Path | None = None,
        motion: dict[str, float | Keyframes] | None = None,
        motion_curves: str | Path | None = None,
        appearance: Sequence[str | Path] = (),
        actor: str | Path | None = None,
        audio_peaks: str = PEAK_HANDLING[0],
        colourspace: str | None = None,
        ocio: str | Path | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | Callable[[], bool] | None = None,
    ):
        if batch < 1:
            raise LipSyncError(f"batch {batch}: must be at least 1")
        self.plate_path = Path(plate)
        self.batch = batch
        self.timings = dict.fromkeys(STAGES, 0.0)
        self._progress = progress or (lambda stage, done, total: None)
        self._cancelled = _as_check(cancel)

        with open_plate(self.plate_path) as whole:
            self.info = whole.info
        self.space = plate_space(colourspace, ocio)
        require_float(self.space, self.plate_path, self.info.dtype)
        self.shot = Shot.for_plate(self.plate_path, shot)
        if mask or motion:
            # Controls given by the caller (CLI options, a host's knobs) replace the sidecar's, unsaved.
            validate_controls(mask or {}, motion or {}, "the controls given for this render")
            self.shot.mask = {**self.shot.mask, **(mask or {})}
            self.shot.motion = {**self.shot.motion, **(motion or {})}
            validate(self.shot)
        if mouth in (None, AUTO):
            # A model given says how the mouth is made: a generator (or an actor file) draws it from the audio, a
            # renderer renders over the actor's warped frames.
            mouth = FOOTAGE if model is None else RENDERED if is_renderer(model) else GENERATED
        if mouth not in MOUTHS:
            raise LipSyncError(f"mouth {mouth!r}: use one of {', '.join(MOUTHS)}")
        self.mouth = mouth
        first, last = self.shot.frames or (self.info.first, self.info.last)
        with open_plate(self.plate_path, frames=(first, last)) as ranged:  # checks the shot's range
            self.info = ranged.info
        self.offset_s = offset_seconds(audio_offset, self.info.fps)
        if audio is None and self.shot.audio_path is None:
            raise LipSyncError(f"{self.plate_path}: no dub audio given, and the shot {self.shot.path} names none")
        self.audio_path = Path(audio) if audio is not None else self.shot.audio_path
        self.audio_peaks = audio_peaks
        self.audio, peaks_note = fit_full_scale(load_audio(self.audio_path), self.audio_path, audio_peaks)
        self.device = pick_device(device)
        if self.device.type == "cpu":
            set_cpu_threads()
        # What draws the pixels: the actor's warped frames as they are, the renderer over them, or the generator from
        # the audio. An actor file is the actor's own generator; on the footage paths it lends the clips it was
        # personalized on.
        if mouth == GENERATED and model is not None and actor is not None:
            raise LipSyncError(f"--model {model} and --actor {actor}: the generator draws with one model, give one")
        self.model_path = {GENERATED: Path(model or actor or DEFAULT_MODEL), RENDERED: Path(model or DEFAULT_RENDERER),
                           FOOTAGE: None}[mouth]
        self.model = load_model(self.model_path, self.device) if self.model_path is not None else None
        if self.model is not None and self.model.config.footage != (mouth == RENDERED):
            kind = "a renderer (--mouth rendered)" if self.model.config.footage else "a generator (or an actor file)"
            raise ModelError(f"{self.model_path}: {kind}, which cannot make --mouth {mouth}: give a "
                             f"{'renderer' if mouth == RENDERED else 'generator'} or change --mouth")
        # What makes the mouth, as the provenance names it: the generator, or on the footage paths the motion model.
        self.mouth_model = self.model_path if mouth == GENERATED else Path(motion_model or DEFAULT_MOTION_MODEL)
        self.size = self.model.config.size if self.model is not None else None

        self.notes: list[str] = []  # what the user should know about the shot and how the mouth was made
        self.track = self._analysis()
        self.face_id = face if face is not None else self.shot.face
        # A shot where no face was ever found passes through whole; asking for a face that is not
        # there is an error naming the faces that are.
        self.face = self.track.face(self.face_id) if self.track.faces or face is not None else None
        started = time.perf_counter()
        self.mel = log_mel(self.audio)
        self.audio_times = self.track.times - self.track.times[0] - self.offset_s
        self.timings["features"] += time.perf_counter() - started
        if self.info.variable_fps and not self.info.conformed:
            self.notes.append(self._variable_rate_note())
        if peaks_note:
            self.notes.append(peaks_note)
        if len(self.track.faces) > 1:
            self.notes.append(faces_note(self.track, self.face_id))
        self.reference = self._reference() if self.model is not None else None
        self.footage = self._footage(motion_model, motion_curves, appearance, actor) if mouth != GENERATED else None
        if mouth == GENERATED and (motion_model or motion_curves or self.shot.motion or appearance or self.shot.appearance):
            self.notes.append("the generator draws the mouth from the audio alone: the motion model, curves, added "
                              "footage and the shot's motion controls apply to --mouth footage and rendered only")
        self.dubbable = (self.reference if mouth == GENERATED else self.footage) is not None

    # ------------------------------------------------------------------------------- preparation

    def _analysis(self) -> Track:
        started = time.perf_counter()

        def report(done: int, total: int) -> None:
            if self._cancelled():
                raise Cancelled("cancelled during face analysis")
            self._progress("analyze", done, total)

        track = shot_track(self.plate_path, self.shot, (self.info.first, self.info.last), report, self.notes, self.space)
        self.timings["analyze"] += time.perf_counter() - started
        return track

    def _variable_rate_note(self) -> str:
        """What a constant-rate output does to a variable-rate plate: the mouth follows the dub at each frame's own
        time, but the output plays the frames at even intervals."""
        info, times = self.info, self.track.times - self.track.times[0]
        slowest, fastest = info.fps_range
        drift = float(np.abs(times - np.arange(len(times)) / info.fps).max())
        return (f"{self.plate_path}: variable frame rate ({slowest:.3g}-{fastest:.3g} fps, {info.source_fps:.3g} on "
                f"average): the output plays its {len(times)} frames at a constant {info.fps:.3g} fps "
                f"({len(times) / info.fps:.2f} s for the plate's {info.duration:.2f} s), so the picture drifts up to "
                f"{drift:.2f} s from the dub; conform the plate to a constant rate first to keep its timing")

    def _usable(self, index: int) -> str | None:
        """Why the frame at track index `index` cannot be dubbed, or None when it can."""
        number = int(self.track.frames[index])
        if self.shot.bypassed(number):
            return BYPASSED
        if self.face is None or not self.face.present[index]:
            return NO_FACE
        if self.face.partial[index]:
            return PARTIAL
        return None

    def _reference(self) -> torch.Tensor | None:
        """The reference crop (1, 3, S, S): the sidecar's reference frame, else the shot's first frame
        with a whole face in view. None when the face is never usable (every frame passes through)."""
        if self.face is None:
            return None
        if self.shot.reference is not None:
            number = self.shot.reference
            index = self.track.index(number)
            if not self.face.present[index]:
                raise FaceError(f"{self.shot.path}: reference frame {number} has no face {self.face_id}")
        else:
            usable = [i for i in range(len(self.track)) if self._usable(i) is None]
            if not usable:
                return None
            index, number = usable[0], int(self.track.frames[usable[0]])
        with open_plate(self.plate_path, frames=(number, number)) as plate:
            image = next(iter(plate)).image
        crop, _ = self._crop(image, index)
        return to_tensor_images(crop)[None].to(self.device)

    def _footage(self, motion_model: str | Path | None, motion_curves: str | Path | None,
                 appearance: Sequence[str | Path], actor: str | Path | None) -> FootageMouth | None:
        """The motion stage over the whole shot (or the curves file given), then the selection of the actor's own
        frames, the shot's and the added clips', that lend their mouths (None when the face is never usable:
        every frame passes through). Added clips: those given, the sidecar's, and the actor file's."""
        if self.face is None:
            return None
        shapes, usable = footage_shapes(self.face, self.track, self.shot)
        if not usable.any():
            return None
        started = time.perf_counter()
        if motion_curves is not None:
            curves = read_curves(motion_curves, load_motion_model(motion_model))
            if not np.array_equal(curves.frames, self.track.frames):
                raise LipSyncError(f"{motion_curves}: its frames {_ranges_text(curves.frames)} are not this shot's "
                                   f"{_ranges_text(self.track.frames)}: write it again with `lipsync motion`")
        else:
            curves = shot_motion(self.plate_path, self.audio_path, shot=self.shot, face=self.face_id,
                                 audio_offset_s=self.offset_s, model=motion_model, track=self.track, dub_audio=self.audio,
                                 footage=(shapes, usable))
        shot = Footage(self.plate_path, self.track, self.face, usable, shapes)
        clips = [AddedClip(Path(clip), "--appearance") for clip in appearance]
        clips += [AddedClip(path, f"the appearance list of {self.shot.path}") for path in self.shot.appearance_paths]
        if actor is not None:
            lent, notes = actor_clips(actor)
            clips += lent
            self.notes.extend(notes)
        added, notes = added_footage(shot, clips)
        self.notes.extend(notes)
        footage = FootageMouth(shot, curves, added, self.space)
        self.timings["features"] += time.perf_counter() - started
        source = f"from {motion_curves}" if motion_curves is not None else "predicted"
        self.notes.append(f"mouth motion: {source}" + (f", actor style {curves.style}" if curves.style else ""))
        if added:
            self.notes.append(f"added footage lends the mouth to {footage.added_share:.0%} of the shot's frames")
        if footage.coverage_note():
            self.notes.append(footage.coverage_note())
        return footage

    def appearance_footage(self) -> list[Footage]:
        """The clips added (--appearance, the sidecar's, the actor file's), as used."""
        return self.footage.sources[1:] if self.footage is not None else []

    def _crop(self, image: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The aligned uint8 crop of one frame and its plate -> crop matrix."""
        M = self.face.alignment(index, self.size)
        return geometry.warp_to_crop(to_uint8_rgb(image, self.space), M, self.size), M

    def _mask(self, index: int, shape_hw: tuple[int, int], M: np.ndarray | None = None) -> np.ndarray:
        """The shot's mask on one frame (its overrides and painted mask applied): in the plate, or
        with M in the crop."""
        number = int(self.track.frames[index])
        mask = self.face.mask(index, shape_hw, M, self.shot.overrides(number))
        return self.shot.apply_painted(mask, number, M)

    # ------------------------------------------------------------------------------- rendering

    @property
    def first(self) -> int:
        return int(self.track.frames[0])

    @property
    def last(self) -> int:
        return int(self.track.frames[-1])

    def check_range(self, first: int | None, last: int | None) -> tuple[int, int]:
        """(first, last), the shot's ends where not given; an error when they leave the shot."""
        first = self.first if first is None else first
        last = self.last if last is None else last
        if not (self.first <= first <= last <= self.last):
            raise MediaError(f"{self.plate_path}: frames {first}-{last} are outside the shot's range {self.first}-{self.last}")
        return first, last

    def cell(self, number: int) -> tuple[int, int]:
        """The first and last frame of the cell holding frame `number`: the frames rendered with it."""
        index = self.track.index(number)
        start = index // self.batch * self.batch
        end = min(start + self.batch, len(self.track)) - 1
        return int(self.track.frames[start]), int(self.track.frames[end])

    def skip_reason(self, number: int) -> str | None:
        """Why frame `number` passes through untouched (bypassed, no face, ...), or None when it is dubbed."""
        return self._usable(self.track.index(number)) if self.dubbable else NO_FACE

    def frames(self, first: int | None = None, last: int | None = None) -> Iterator[DubbedFrame]:
        """The dubbed frames `first`..`last` (inclusive, default the shot), in order."""
        first, last = self.check_range(first, last)
        # Whole cells: from the start of the cell holding `first` to the end of the one holding `last`.
        cell_first, cell_last = self.cell(first)[0], self.cell(last)[1]
        cell: list[Frame] = []
        cell_end = self.track.index(cell_last)
        with open_plate(self.plate_path, frames=(cell_first, cell_last)) as plate:
            source = iter(plate)
            position = self.track.index(cell_first)
            while position <= cell_end:
                started = time.perf_counter()
                frame = next(source)
                self.timings["decode"] += time.perf_counter() - started
                cell.append(frame)
                position += 1
                if position % self.batch == 0 or position > cell_end:
                    yield from self._render_cell(cell, position - len(cell), first, last)
                    cell = []

    @torch.inference_mode()
    def _render_cell(self, cell: list[Frame], start: int, first: int, last: int) -> Iterator[DubbedFrame]:
        """Render one cell (track indices start .. start + len(cell) - 1); yield its frames in first..last, each
        composited only when asked for: one full-size result at a time, not a cell of them (at 4K, 8 frames
        with their plate-size masks are half a gigabyte)."""
        if self._cancelled():
            raise Cancelled("cancelled")
        started = time.perf_counter()
        reasons = [self.skip_reason(frame.number) for frame in cell]
        if self.footage is not None:
            yield from self._footage_cell(cell, start, first, last, reasons)
            return
        dub = [i for i, reason in enumerate(reasons) if reason is None]
        generated: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if dub:
            crops, masks, matrices = [], [], []
            for i in dub:
                index = start + i
                crop, M = self._crop(cell[i].image, index)
                mask = self._mask(index, (self.size, self.size), M)
                crops.append(crop)
                # The model was trained on masks stored as 8-bit: it sees them quantised the same way.
                masks.append(np.round(mask * 255) / 255)
                matrices.append(M)
            lo, hi = max(0, start - MaLS.CONTEXT), min(len(self.track), start + len(cell) + MaLS.CONTEXT)
            mels = mel_windows(self.mel, self.audio_times[lo:hi], self.model.config.mel_window)
            crops_t = to_tensor_images(np.stack(crops)).to(self.device)
            masks_t = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None].to(self.device)
            mels_t = torch.from_numpy(mels)[None].to(self.device)
            self.timings["features"] += time.perf_counter() - started

            started = time.perf_counter()
            codes = self.model.codes(self.reference, mels_t)[0, start - lo : start - lo + len(cell)]
            out = self.model.decode(
                masked_input(crops_t, masks_t), masks_t, self.reference.expand(len(dub), -1, -1, -1), codes[dub]
            )
            if not torch.isfinite(out).all():
                # NaN survives the clamp below and reaches the output as a black block: stop instead.
                raise ModelError(f"{self.model_path}: the generator drew NaN or infinite pixels for frames "
                                 f"{cell[dub[0]].number}-{cell[dub[-1]].number}: the model is damaged or numerically "
                                 "unstable; use another model or retrain this one")
            display = ((out.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).float().cpu().numpy()
            self.timings["generate"] += time.perf_counter() - started
            generated = {i: (display[k], matrices[k]) for k, i in enumerate(dub)}

        for i, frame in enumerate(cell):
            if not first <= frame.number <= last:
                continue  # decoded only so that its cell is the same batch as in a full render
            started = time.perf_counter()
            if i in generated:
                image, mask = self._composite(frame, *generated[i])
                result = DubbedFrame(frame.number, image, mask, None)
            else:
                result = DubbedFrame(frame.number, frame.image, np.zeros(frame.image.shape[:2], np.float32), reasons[i])
            self.timings["composite"] += time.perf_counter() - started
            yield result

    def _footage_cell(self, cell: list[Frame], start: int, first: int, last: int, reasons: list[str | None]) -> Iterator[DubbedFrame]:
        started = time.perf_counter()
        if not self.footage.has_sources(range(start, start + len(cell))):
            # The source frames of as many of the next frames as SOURCE_BYTES holds, in one pass over the plate:
            # memory follows that budget, not the shot, and a shot that fits is decoded for its sources once. The
            # whole cell's at least: the renderer draws a cell whole.
            end = max(start + len(cell), self.footage.sources_end(start, self.track.index(last) + 1, SOURCE_BYTES))
            self.footage.load_sources(range(start, end), self._cancelled)
            if self._cancelled():
                raise Cancelled("cancelled")
            self.timings["decode"] += time.perf_counter() - started
        drawn = self._draw_over_footage(cell, start, reasons) if self.mouth == RENDERED else {}
        for i, frame in enumerate(cell):
            if not first <= frame.number <= last:
                continue
            started = time.perf_counter()
            if reasons[i] is None:
                if i in drawn:
                    image, used = at_plate(frame.image, *drawn[i], self.space)
                else:
                    image, used = self.footage.render(frame.image, start + i, self._mask(start + i, frame.image.shape[:2]))
                result = DubbedFrame(frame.number, image, used, None)
            else:
                result = DubbedFrame(frame.number, frame.image, np.zeros(frame.image.shape[:2], np.float32), reasons[i])
            self.timings["composite"] += time.perf_counter() - started
            yield result

    def _draw_over_footage(self, cell: list[Frame], start: int, reasons: list[str | None]) -> dict:
        """The renderer over the warped frames of a whole cell (a cell is decoded whole, as on the generator path):
        for each dubbed frame, what `at_plate` takes besides the frame (the plate's mask kept only over the warped
        frame's box: a cell of plate-sized masks is half a gigabyte at 4K)."""
        started = time.perf_counter()
        views = {}
        for i, frame in enumerate(cell):
            if reasons[i] is not None:
                continue
            index = start + i
            plate_mask = self._mask(index, frame.image.shape[:2])
            warped = self.footage.warp(frame.image, index, plate_mask)
            if warped is None:
                continue
            crop, M = self._crop(frame.image, index)
            mask = np.round(self._mask(index, (self.size, self.size), M) * 255) / 255
            candidate, covered = renderer_view(frame.image, warped, M, self.size, self.space)
            views[i] = (crop, mask, candidate, np.round(covered * 255) / 255, warped, M, plate_mask[warped.box])
        if not views:
            return {}
        order = sorted(views)
        crops, masks, candidates, covered = (np.stack([views[i][k] for i in order]) for k in range(4))
        lo, hi = max(0, start - MaLS.CONTEXT), min(len(self.track), start + len(cell) + MaLS.CONTEXT)
        mels = torch.from_numpy(mel_windows(self.mel, self.audio_times[lo:hi], self.model.config.mel_window))[None]
        crops_t = to_tensor_images(crops).to(self.device)
        masks_t = torch.from_numpy(masks.astype(np.float32))[:, None].to(self.device)
        footage = footage_input(to_tensor_images(candidates).to(self.device),
                                torch.from_numpy(covered.astype(np.float32))[:, None].to(self.device))
        self.timings["features"] += time.perf_counter() - started
        started = time.perf_counter()
        codes = self.model.codes(self.reference, mels.to(self.device))[0, start - lo : start - lo + len(cell)]
        out = self.model.decode(masked_input(crops_t, masks_t), masks_t, self.reference.expand(len(order), -1, -1, -1),
                                   codes[order], footage)
        if not torch.isfinite(out).all():
            raise ModelError(f"{self.model_path}: the renderer drew NaN or infinite pixels for frames "
                             f"{cell[order[0]].number}-{cell[order[-1]].number}: the model is damaged or numerically "
                             "unstable; use another model or retrain this one")
        drawing = ((out[:, :3].clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).float().cpu().numpy()
        trust = torch.sigmoid(out[:, 3]).float().cpu().numpy()
        self.timings["generate"] += time.perf_counter() - started
        return {i: (views[i][4], drawing[k], trust[k], views[i][5], views[i][6]) for k, i in enumerate(order)}

    def _composite(self, frame: Frame, crop: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blend a generated display crop into the plate frame inside the plate-space mask."""
        image = frame.image
        mask = self._mask(self.track.index(frame.number), image.shape[:2])
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return image, mask
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        # Only the mask's box is warped back and blended: a 4K plate needs no full-frame work per face.
        box = geometry.from_corner(M, x0, y0)
        generated = geometry.warp_from_crop(crop, box, (y1 - y0, x1 - x0))
        # Where the mask would reach past the crop there is nothing generated: keep the plate there.
        inside = geometry.warp_from_crop(np.ones(crop.shape[:2], np.float32), box, (y1 - y0, x1 - x0))
        mask[y0:y1, x0:x1] *= inside
        result = image.copy()
        result[y0:y1, x0:x1] = composite(image[y0:y1, x0:x1], generated, mask[y0:y1, x0:x1], self.space)
        return result, mask


def dub(
    plate: str | Path,
    audio: str | Path | None,
    output: str | Path,
    *,
    frames: tuple[int, int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    shot: str | Path | None = None,
    face: int | None = None,
    audio_offset: str | float = 0.0,
    model: str | Path | None = None,
    device: str = "auto",
    batch: int = DEFAULT_BATCH,
    mask: dict[str, float | None | Keyframes] | None = None,
    mouth: str | None = None,
    motion_model: str | Path | None = None,
    motion: dict[str, float | Keyframes] | None = None,
    motion_curves: str | Path | None = None,
    appearance: Sequence[str | Path] = (),
    actor: str | Path | None = None,
    audio_peaks: str = PEAK_HANDLING[0],
    colourspace: str | None = None,
    ocio: str | Path | None = None,
    watermark: bool = True,
    progress: Progress | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> DubReport:
    """Dub `plate` with `audio` into `output` (.mp4, .mov, name.####.exr, name.####.png).

    frames: the inclusive range to render (default: the shot's); the audio stays anchored at the
    shot's first frame, so a chunk equals the same frames of a full render.
    resume: for an image sequence, keep the whole frames already written (rendered with the same settings)
    and render the others. overwrite: replace an existing output (or the range's existing frames); without
    it, and without resume, an existing output is an error.
    mask: mask controls (name -> value or Keyframes, see shot.MaskOverrides) replacing the shot's for this render.
    audio_peaks: a dub above full scale is 'normalise'd or 'clip'ped, for the model and in the output (with a note).
    colourspace, ocio: a float plate's OpenColorIO colourspace and config (default $OCIO), see media.ocio; only the
    mouth is converted back into it, and a video or PNG output of it is the config's display image.
    watermark: mark the dubbed region invisibly (the content credentials and header facts are written either way).
    progress(stage, done, total) is called per frame ('analyze', then 'render'); `cancel` (an Event or
    a callable) stops the render between frames with `Cancelled`. Nothing half-written is ever left
    under the output's name; a cancelled sequence keeps its finished frames (resume continues it).

    Where the output goes is checked before any analysis: a folder that cannot be written, a name that is
    a folder, an existing output, a disk without room for a frame, another render writing the same output.
    """
    output = Path(output)
    sequence = output_kind(output) in ("exr", "png")
    if resume and not sequence:
        raise LipSyncError(f"{output}: --resume continues image sequences; a video output is always rendered whole")
    if resume and overwrite:
        raise LipSyncError(f"{output}: --resume keeps the frames already written and --overwrite renders them again: choose one")
    added = [*appearance, *Shot.for_plate(plate, shot).appearance_paths, *(recorded_paths(actor) if actor else [])]
    refuse_inputs(output, [p for p in (plate, audio, actor, *added) if p is not None])
    span, info = _planned_range(plate, shot, frames)
    created = make_folder(output)
    try:
        with output_lock(output, span if sequence else None):
            existing = _check_output(output, sequence, span, info, resume, overwrite)
            renderer = Renderer(
                plate, audio, shot=shot, face=face, audio_offset=audio_offset, model=model, device=device,
                batch=batch, mask=mask, mouth=mouth, motion_model=motion_model, motion=motion,
                motion_curves=motion_curves, appearance=appearance, actor=actor, audio_peaks=audio_peaks,
                colourspace=colourspace, ocio=ocio, progress=progress, cancel=cancel,
            )
            return _render(renderer, output, span, existing if sequence else None, resume, overwrite,
                           (renderer.model_path, motion_model, motion_curves),
                           watermark, progress, _as_check(cancel))
    except BaseException:
        remove_folders(created)
        raise


def _planned_range(plate, shot, frames) -> tuple[tuple[int, int], PlateInfo]:
    """The frames a render will write (the range given, else the shot's, else the plate's) and the plate's
    facts, known before any analysis; a range outside the plate is an error here."""
    with open_plate(plate, frames=frames or Shot.for_plate(plate, shot).frames) as opened:
        info = opened.info
    return (info.first, info.last), info


def _check_output(output: Path, sequence: bool, span: tuple[int, int], info: PlateInfo, resume: bool,
                  overwrite: bool) -> dict[int, Path]:
    """Refuse an output that cannot or must not be written; return a sequence's existing frames."""
    # Room for one uncompressed float RGBA frame: more than any format's first frame takes.
    check_writable(output, info.width * info.height * 4 * 4)
    if not sequence:
        if output.exists() and not overwrite:
            raise MediaError(f"{output} exists: give --overwrite to replace it, or choose another -o")
        return {}
    try:
        existing = sequence_files(output)
    except MediaError:
        existing = {}  # no frame of it yet (its folder is there: it was made above)
    in_range = sorted(n for n in existing if span[0] <= n <= span[1])
    folders = [n for n in in_range if existing[n].is_dir()]
    if folders:
        raise MediaError(f"{existing[folders[0]]} is a folder: the sequence's frame {folders[0]} cannot be written")
    if in_range and not (resume or overwrite):
        raise MediaError(f"{output}: frames {_ranges_text(in_range)} exist: give --resume to keep them and render the "
                         "rest, or --overwrite to render them again")
    return existing


def _render(renderer: Renderer, output: Path, span: tuple[int, int], existing: dict[int, Path] | None, resume: bool,
            overwrite: bool, files: tuple, watermark: bool, progress: Progress | None,
            cancelled: Callable[[], bool]) -> DubReport:
    first, last = renderer.check_range(*span)
    report = DubReport(renderer.plate_path, output, first, last, notes=list(renderer.notes))
    start_time = float(renderer.audio_times[renderer.track.index(first)])
    _, report.audio = audio_for_range(renderer.audio, start_time, (last - first + 1) / renderer.info.fps)

    start = first
    if existing is not None:
        info = renderer.info
        if resume:  # whole frames only: a frame left empty or cut short by a crash is rendered again
            while start <= last and start in existing and render_record.whole_frame(existing[start], info.width, info.height):
                start += 1
            report.resumed_from = start if start > first else None
        # The sequence's frames this render keeps must have been rendered as it would render them.
        settings = render_record.settings(renderer, *files)
        if not overwrite:
            render_record.check(output, settings, sorted(n for n in existing if not start <= n <= last))
    plate_is_sequence = renderer.info.kind == "sequence"
    facts = DubFacts.of_render(renderer.plate_path, plate_is_sequence, renderer.audio_path, renderer.mouth_model,
                               renderer.mouth, (first, last), renderer.model_path if renderer.mouth == RENDERED else None)
    if existing is not None and start <= last:
        sequence_credentials.unsign(output)
    with DubOutput(output, renderer.info, renderer.audio_path, start_time, [renderer.plate_path, renderer.audio_path],
                   renderer.audio_peaks, facts, watermark, renderer.space) as out:
        total = last - start + 1
        for done, result in enumerate(renderer.frames(start, last) if start <= last else [], 1):
            if result.skipped:
                report.passed[result.skipped].append(result.number)
            else:
                report.dubbed.append(result.number)
            started = time.perf_counter()
            out.write(result.number, result.image, result.mask)
            if existing is not None and done == 1:  # once a frame is there to vouch for, not before
                out.flush()
                render_record.write(output, settings)
            renderer.timings["encode"] += time.perf_counter() - started
            if progress:
                progress("render", done, total)
            if cancelled():
                raise Cancelled("cancelled")
        started = time.perf_counter()
        out.flush()
        renderer.timings["encode"] += time.perf_counter() - started
    said = "signed content credentials (C2PA)"
    if existing is not None:
        # The sequence is the shot's frames: signed by the render that completes it, whole or as its last chunk.
        shot = (renderer.first, renderer.last)
        absent = sequence_credentials.missing(output, shot)
        if absent:
            said = (f"the dub's facts in each {out.kind.upper()} frame; signed content credentials (a C2PA sidecar) "
                    f"once the shot's frames {_ranges_text(absent)} are rendered too, or from `lipsync farm assemble`")
        else:
            sidecar = sequence_credentials.seal(output, renderer.plate_path, plate_is_sequence, shot, out.identity)
            said = f"the dub's facts in each {out.kind.upper()} frame, signed content credentials in {sidecar.name} (C2PA sidecar)"
    report.notes.append(_provenance_note(out, watermark, said))
    report.timings = renderer.timings
    return report


def _provenance_note(out: DubOutput, watermark: bool, said: str) -> str:
    """What the output says about itself, and how to check it."""
    mark = f", a watermark in the dubbed region of {len(out.dubbed)} frames" if watermark else ", no watermark (--no-watermark)"
    return f"provenance: {said}{mark}; check with `lipsync verify`"
