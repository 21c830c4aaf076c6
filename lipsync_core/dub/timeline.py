"""`lipsync dub-timeline EDIT.otio -o DUBBED.otio`: dub every clip of an editorial timeline that has
dub audio laid against it, and write a new timeline that plays the dubbed media.

The timeline is read with OpenTimelineIO (`.otio`, as editors and conform tools export it).

Which audio dubs which clip (the matching rule): the dub audio sits on an audio track named `dub`
(`--dub-track`). A video clip is dubbed with the clip of that track that overlaps it the longest in
record time (the timeline's own time), kept in sync as it sits there: at every frame the shot hears
what the dub clip's file holds at that record time, so a line starting half a second into a shot
starts half a second into the dubbed shot. The file is not cut at the dub clip's in and out points:
where the shot reaches past them it hears the file's audio before or after (silence past the
file's ends). Video clips that no dub clip overlaps are left as they are.

Only the frames the edit uses are rendered: the clip's source range, the frames a transition into or
out of it shows, and `--handles` frames either side (as far as the media has them). The new media
keeps the source timecode: its available range starts at the source time of its first frame, so each
dubbed clip keeps its own source range (timecodes and all) and can be trimmed into its handles. Each
dubbed clip points at its new media in the new timeline, keeping its place, name, effects and
markers; every other clip, track and the audio tracks are copied unchanged. The input timeline is
never written, and the output is written whole or not at all (a temporary file renamed over it).

Where a clip's media has no available range (EDL and AAF conversions), its source range is a
timecode: the file's own start timecode (the `timecode` tag of a .mov or .mxf) places it; a source
range that lands outside the file is an error saying so. A retimed clip (a LinearTimeWarp or
FreezeFrame effect) and a nested stack (a compound clip) with dub audio against it are not dubbed,
and the summary says why; nothing is skipped without a line in the summary.

Rendering reuses `lipsync batch` per clip (`batch.run_shot`): the same skip, resume and failure
rules, and the same summary table.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import opentimelineio as otio

from ..errors import LipSyncError, MediaError
from ..media.frames import open_plate
from ..shot import Shot
from ..textfiles import parse_json, read_text
from .batch import Outcome, run_shot, table
from .cli import ProgressBars
from .outputs import output_kind
from .timing import offset_seconds

DEFAULT_DUB_TRACK = "dub"
# The media each dubbed clip gets: a video keeps the dub audio inside; a sequence keeps the mask layer.
FORMATS = {"mov": "{name}.mov", "mp4": "{name}.mp4", "exr": "{name}.####.exr", "png": "{name}.####.png"}


@dataclass
class ClipJob:
    """One video clip of the timeline and what dubbing it takes."""

    clip: otio.schema.Clip
    plate: Path | None = None
    frames: tuple[int, int] | None = None  # the plate's own numbering
    fps: float | None = None
    audio: Path | None = None
    audio_offset_s: float = 0.0  # as `lipsync dub --audio-offset`
    media_start: otio.opentime.RationalTime | None = None  # the source time of the first frame rendered
    problem: str | None = None  # why the clip is not dubbed
    status: str = "skipped"  # the summary's word for a clip not dubbed: 'skipped' (kept as it is) or 'failed'


def media_path(reference, folder: Path, role: str) -> Path | None:
    """The file (or sequence pattern) a media reference points at, relative paths from the timeline's folder
    (OTIO's convention); None for media that is no file (a generator: bars, a solid colour).

    Media that should be a file and is not one here (offline, a URL, a Windows drive) is an error naming
    `role` ("the clip's media") and what to do."""
    if isinstance(reference, otio.schema.MissingReference):
        raise LipSyncError(f"{role} is offline in the edit (a missing reference): relink it and export the timeline again")
    if isinstance(reference, otio.schema.ImageSequenceReference):
        name = f"{reference.name_prefix}{'#' * max(reference.frame_zero_padding, 1)}{reference.name_suffix}"
        url = reference.target_url_base.rstrip("/") + "/" + name
    elif isinstance(reference, otio.schema.ExternalReference):
        url = reference.target_url
    else:
        return None
    scheme = urlparse(url).scheme
    if len(scheme) == 1:
        raise LipSyncError(f"{role} is {url}, a Windows drive path: relink it to where the file is on this machine")
    if scheme not in ("", "file"):
        raise LipSyncError(f"{role} is {url}, not a local file: download it and relink the clip to the local copy")
    path = Path(otio.url_utils.filepath_from_url(url) if scheme == "file" else url)
    return path if path.is_absolute() else folder / path


def media_timecode_s(path: Path, rate: float) -> float | None:
    """The file's start timecode in seconds (the `timecode` tag of a .mov or .mxf); None when it has none."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = [container.metadata] + [stream.metadata for stream in container.streams]
    except (av.error.FFmpegError, OSError):
        return None
    text = next((tag["timecode"] for tag in tags if "timecode" in tag), None)
    return None if text is None else otio.opentime.from_timecode(text, rate).to_seconds()


def _source_offset_s(clip, path: Path) -> float:
    """Seconds from the start of the clip's media file (`path`) to the first frame (or sample) the edit uses.
    Without an available range the source range is the media's timecode, placed by the file's own."""
    start = clip.source_range.start_time if clip.source_range else clip.available_range().start_time
    media = clip.media_reference.available_range
    if media is not None:
        return (start - media.start_time).to_seconds()
    timecode = media_timecode_s(path, start.rate)
    return start.to_seconds() - (timecode or 0.0)


def _record_range_s(clip) -> tuple[float, float]:
    """Where the clip plays in the timeline: [start, end) in seconds."""
    where = clip.range_in_parent()
    return where.start_time.to_seconds(), where.end_time_exclusive().to_seconds()


def dub_clip_for(clip, dub_clips: list) -> tuple[object | None, float]:
    """The dub-track clip overlapping `clip` the longest in record time, and the overlap in seconds."""
    start, end = _record_range_s(clip)
    best, best_overlap = None, 0.0
    for candidate in dub_clips:
        a_start, a_end = _record_range_s(candidate)
        overlap = min(end, a_end) - max(start, a_start)
        if overlap > best_overlap:
            best, best_overlap = candidate, overlap
    return best, best_overlap


def plan(timeline: otio.schema.Timeline, folder: Path, dub_track: str, handles: int = 0) -> list[ClipJob]:
    """A job for every video clip of the timeline, in track order: what to render, or why not."""
    dub_clips = [
        item for track in timeline.audio_tracks() if track.name == dub_track
        for item in track if isinstance(item, otio.schema.Clip)
    ]
    jobs = []
    for track in timeline.video_tracks():
        for item in track:
            # Gaps have nothing to dub; a transition's frames are rendered with the clips either side of it.
            if not isinstance(item, (otio.schema.Clip, otio.schema.Stack, otio.schema.Track)):
                continue
            job = ClipJob(item)
            jobs.append(job)
            audio_clip, _ = dub_clip_for(item, dub_clips)
            if audio_clip is None:
                job.problem = f"no clip on audio track '{dub_track}' overlaps it: kept as it is"
                continue
            if not isinstance(item, otio.schema.Clip):
                job.problem, job.status = ("a compound clip (nested stack): its clips are not dubbed; decompose it "
                                           "in the edit and export again"), "failed"
                continue
            warps = [effect for effect in item.effects if isinstance(effect, otio.schema.TimeEffect)]
            if warps:
                speed = ", ".join(f"{type(w).__name__} x{getattr(w, 'time_scalar', 0):g}" for w in warps)
                job.problem, job.status = (f"it is retimed ({speed}): dub it at 100% speed, then retime the dubbed "
                                           "clip"), "failed"
                continue
            try:
                job.plate = media_path(item.media_reference, folder, "the clip's media")
                job.audio = media_path(audio_clip.media_reference, folder, f"the media of its dub '{audio_clip.name}'")
                if job.plate is None or job.audio is None:
                    job.problem = "its media (or its dub's) is not a file reference: kept as it is"
                    continue
                _place(job, audio_clip, handles)
            except LipSyncError as error:
                job.problem, job.status = str(error), "failed"
    return jobs


def _place(job: ClipJob, audio_clip, handles: int) -> None:
    """The clip's plate frames (what the edit shows, with transitions and handles) and the audio offset that
    plays the dub as it sits on the timeline."""
    try:
        with open_plate(job.plate) as plate:
            info = plate.info
    except MediaError as error:
        raise MediaError(f"{error} (the clip's media: relink the clip to a readable file)") from None
    if not job.audio.exists():
        raise MediaError(f"{job.audio}: file not found (the media of its dub '{audio_clip.name}': relink it)")
    job.fps = info.fps
    used, shown = job.clip.trimmed_range(), job.clip.visible_range()  # shown: with the frames transitions use
    offset_s = _source_offset_s(job.clip, job.plate)
    if job.clip.media_reference.available_range is None and not -0.5 / info.fps < offset_s < info.duration:
        # (With an available range, `lipsync dub` names the frames outside the plate itself.)
        where = otio.opentime.to_timecode(used.start_time, used.start_time.rate) if used.start_time.value >= 0 else used.start_time
        has_timecode = media_timecode_s(job.plate, used.start_time.rate) is not None
        raise MediaError(f"its source range starts at {where}, which is not in {job.plate.name} ({info.duration:.2f} s"
                         f"{'' if has_timecode else ', no start timecode'}): export the timeline with the media's "
                         "available ranges, or relink the clip to its real media")
    cut = info.first + round(offset_s * info.fps)  # the plate frame at the clip's first frame in the edit
    if isinstance(job.clip.media_reference, otio.schema.ImageSequenceReference):
        cut = job.clip.media_reference.frame_for_time(used.start_time)  # the files' own numbers
    lead = round((used.start_time - shown.start_time).to_seconds() * info.fps)
    count = round(shown.duration.to_seconds() * info.fps)
    start, end = cut - lead, cut - lead + count - 1
    # Handles go as far as the media has frames; frames the edit itself uses are never cut off here.
    first = max(start - handles, min(start, info.first))
    job.frames = (first, min(end + handles, max(end, info.last)))
    job.media_start = used.start_time - otio.opentime.RationalTime(cut - first, info.fps).rescaled_to(used.start_time.rate)
    # `lipsync dub` anchors the audio at the shot's first frame (the sidecar's range, else the plate's
    # first frame) and plays dub time = (frame - anchor) / fps - offset. The timeline plays, at the
    # clip's first frame, the dub clip's source time + (video record start - dub record start).
    shot = Shot.for_plate(job.plate)
    anchor = shot.frames[0] if shot.frames else info.first
    video_start, _ = _record_range_s(job.clip)
    audio_start, _ = _record_range_s(audio_clip)
    heard = _source_offset_s(audio_clip, job.audio) + video_start - audio_start
    job.audio_offset_s = (cut - anchor) / info.fps - heard


def dubbed_reference(output: Path, job: ClipJob):
    """The media reference of a dubbed clip's new media (a video, or a sequence with the plate's frame
    numbers), its available range starting at the source time of its first frame (the source timecode
    kept), and the source range of the clip in it: the clip's own."""
    first, last = job.frames
    count = last - first + 1
    start = job.media_start
    available = otio.opentime.TimeRange(start, otio.opentime.RationalTime(count, job.fps).rescaled_to(start.rate))
    url = otio.url_utils.url_from_filepath(str(output.resolve()))
    if output_kind(output) in ("mp4", "mov"):
        return otio.schema.ExternalReference(target_url=url, available_range=available), job.clip.trimmed_range()
    prefix, padding, suffix = re.fullmatch(r"(.*?)(#+)(\.[^.]+)", output.name).groups()
    rate = job.fps
    reference = otio.schema.ImageSequenceReference(
        target_url_base=otio.url_utils.url_from_filepath(str(output.parent.resolve())) + "/",
        name_prefix=prefix, name_suffix=suffix, start_frame=first, frame_step=1, rate=rate,
        frame_zero_padding=len(padding), available_range=available,
    )
    return reference, job.clip.trimmed_range()


def read_timeline(path: Path) -> otio.schema.Timeline:
    """The timeline of an OTIO file; what cannot be read is an error naming the file."""
    if path.suffix.lower() == ".otio":
        # OTIO's own JSON reader recurses without a limit: a file nested some 50,000 levels deep crashes the
        # process. Python's parser stops at its recursion limit, far deeper than any real timeline.
        parse_json(read_text(path, "timeline", LipSyncError), path, "timeline", LipSyncError)
    try:
        timeline = otio.adapters.read_from_file(str(path))
    except Exception as error:  # OTIO raises its own exception types per adapter; the reason is what matters
        raise LipSyncError(f"{path}: cannot read the timeline ({error})") from None
    if not isinstance(timeline, otio.schema.Timeline):
        raise LipSyncError(f"{path}: holds a {type(timeline).__name__}, not one timeline")
    for clip in timeline.find_clips():
        try:
            used = clip.trimmed_range()
        except otio.exceptions.OTIOError as error:  # no place on the timeline can be worked out for it, or its neighbours
            raise LipSyncError(f"{path}: clip '{clip.name}' has no length ({error}): export the timeline with "
                               "the clips' source ranges") from None
        if not used.duration.rate > 0:
            raise LipSyncError(f"{path}: clip '{clip.name}' has a frame rate of {used.duration.rate} in its range: "
                               "export the timeline again")
    return timeline


def write_timeline(timeline: otio.schema.Timeline, path: Path) -> None:
    """Write whole or not at all: a temporary file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        otio.adapters.write_to_file(timeline, str(temporary), adapter_name="otio_json")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _label(job: ClipJob) -> str:
    return f"{job.clip.name or 'clip'} ({job.plate or '?'})"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "clip"


def add_parser(subparsers) -> None:
    from .cli import add_render_options

    parser = subparsers.add_parser(
        "dub-timeline",
        help="dub every clip of an OpenTimelineIO timeline that has dub audio against it; write a new timeline",
        description="Read TIMELINE (.otio) and dub each video clip with the dub audio laid against it: the clip "
        "of the audio track named 'dub' (--dub-track) that overlaps the video clip longest in record time, "
        "kept in sync as it sits on the timeline (its file is not cut at the dub clip's in and out points). "
        "Only the frames the edit uses are rendered. Writes OUTPUT (.otio), a copy of TIMELINE in which each dubbed "
        "clip plays its dubbed media; TIMELINE itself is not changed. Clips without dub audio are kept as they "
        "are. The summary lists every video clip; the exit status is 1 when any failed. Options below apply "
        "to every clip (--audio-offset moves all dubs by the same amount, on top of their timeline placement).",
    )
    parser.add_argument("timeline", type=Path, help="the edit: an OpenTimelineIO .otio file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the new timeline (.otio)")
    parser.add_argument("--dub-track", default=DEFAULT_DUB_TRACK, help=f"name of the audio track holding the dub (default: {DEFAULT_DUB_TRACK})")
    parser.add_argument("--format", choices=sorted(FORMATS), default="mov",
                        help="media written for each dubbed clip: mov (ProRes 4444, mask as alpha, the dub inside), mp4, "
                        "exr (mask as layer lipsync.mask) or png (default: mov)")
    parser.add_argument("--media-dir", type=Path, help="folder for the dubbed media (default: OUTPUT's name + '_media' beside it)")
    parser.add_argument("--force", action="store_true", help="render clips whose dubbed video already exists again")
    parser.add_argument("--handles", type=int, default=0, metavar="FRAMES",
                        help="frames rendered before and after each clip, as far as its media has them (default: 0)")
    add_render_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".otio":
        raise LipSyncError(f"{args.output}: the new timeline is written as .otio")
    if args.output.resolve() == args.timeline.resolve():
        raise LipSyncError(f"{args.output}: refusing to write over the input timeline; choose another name")
    timeline = read_timeline(args.timeline)
    # Paths given on the command line are the working directory's; the media the timeline names, its own folder's.
    media_dir = (args.media_dir or args.output.with_name(args.output.stem + "_media")).absolute()
    if args.handles < 0:
        raise LipSyncError(f"--handles {args.handles}: give a number of frames, 0 or more")
    jobs = plan(timeline, args.timeline.resolve().parent, args.dub_track, args.handles)
    wanted = [job for job in jobs if job.problem is None or job.status == "failed"]  # the clips with dub audio
    if not wanted:
        raise LipSyncError(f"{args.timeline}: no video clip has dub audio on an audio track named '{args.dub_track}'")

    # Clips are edited in the copy that is written; the one read stays as it was.
    result = timeline.deepcopy()
    copies = {id(old): new for old, new in zip(timeline.find_clips(), result.find_clips())}
    outcomes = []
    made_media_dir = not media_dir.exists()
    dubbed = 0
    for i, job in enumerate(jobs, 1):
        label = _label(job)
        if job.problem is not None:
            outcomes.append(Outcome(label, "-", job.status, job.problem))
            continue
        print(f"[{i}/{len(jobs)}] {label}", flush=True)
        output = media_dir / FORMATS[args.format].format(name=f"{i:03d}_{_safe_name(job.clip.name or job.plate.stem)}")
        nudge = offset_seconds(args.audio_offset, job.fps)
        row = {
            "plate": str(job.plate), "audio": str(job.audio), "output": str(output), "frames": list(job.frames),
            "audio_offset": f"{job.audio_offset_s + nudge:.6f}s",
        }
        media_dir.mkdir(parents=True, exist_ok=True)
        bars = ProgressBars()
        try:
            outcome = run_shot(row, Path.cwd(), args, args.force, bars)
        finally:
            bars.close()
        outcomes.append(Outcome(label, outcome.frames, outcome.status, outcome.detail))
        if outcome.status != "failed":
            dubbed += 1
            clip = copies[id(job.clip)]
            clip.media_reference, clip.source_range = dubbed_reference(output, job)
            clip.metadata["lipsync"] = {
                "source": str(job.plate), "audio": str(job.audio), "frames": list(job.frames),
                "audio_offset_s": job.audio_offset_s + nudge,
            }
    print(table(outcomes))
    if not dubbed:
        # A timeline that plays none of its dubs would pass for a result: write nothing, leave nothing.
        if made_media_dir and media_dir.is_dir() and not any(media_dir.iterdir()):
            media_dir.rmdir()
        first = next(o for o in outcomes if o.status == "failed")
        raise LipSyncError(f"{args.timeline}: none of its {len(wanted)} clip(s) with dub audio could be dubbed, e.g. "
                           f"{first.shot}: {first.detail}; nothing written")
    write_timeline(result, args.output)
    print(f"wrote {args.output}")
    return 1 if any(o.status == "failed" for o in outcomes) else 0
