"""`lipsync batch SHOTLIST`: dub a list of shots in order, one failure not stopping the others.

The shot list is JSON (a list of objects, or {"shots": [...]}) or CSV (a header row, one shot per
row, empty cells meaning "not given"; as spreadsheets save it: UTF-8 with or without a byte-order mark,
UTF-16, separated by ',', ';' or tabs). A list without a shot is an error. Fields, paths relative to the
shot list's folder:

    plate         video file or image sequence pattern                      required
    output        out.mp4, out.mov, out.####.exr or out.####.png            required
    audio         the dub (may be left out when the shot's sidecar names it)
    frames        1001-1050 (default: the shot's range)
    audio_offset  3f or 0.12s
    appearance    more footage of the shot's actor, as `dub --appearance`: clips separated by '|' in a CSV
                  cell (take2.mov|reels/interview.mov), a list or one path in JSON; besides the sidecar's list
    actor         the actor file from `lipsync personalize`, as `dub --actor`: its clips lend their mouths
    face, model, shot (a sidecar to use instead of the one beside the plate)

    plate,audio,frames,output,model,appearance
    shots/010/plate.####.exr,dub/010_de.wav,1001-1100,renders/010_de.####.exr,,shots/010/take2.mov
    shots/020/plate.mov,dub/020_de.wav,,renders/020_de.mov,models/actor_a.safetensors,

A shot whose video output already exists is skipped (`--force` renders it again, over it); an image-sequence
output is continued from its first missing frame (`--force`: rendered again whole), so running an interrupted
batch again finishes it.
The summary table at the end lists every shot as done, skipped or failed (with the reason); the
exit status is 1 when any shot failed.

Render farms: `lipsync batch SHOTS.csv --farm openjd|opencue --job JOB` (or `lipsync farm job`, lipsync_core/farm/)
writes the shot list as a job for the farm's engine instead of rendering it, laid out as below. By hand: split a
shot into frame-range chunks, one job per chunk. Chunks are rendered exactly
as the same frames of a full render (the audio stays anchored at the shot's first frame, and the
model's temporal context and batches are laid out from the shot's start), so any split gives the
same files. Write image sequences (a video cannot be assembled from separately written chunks):

    # 1. one job, before the chunks: track the whole shot once; the track is cached beside the
    #    plate (PLATE.lipsync.track.npz) and every chunk reuses it
    lipsync analyze /shows/x/010/plate.####.exr --no-preview
    # 2. one job per chunk, in parallel (Deadline/Tractor/OpenCue command template):
    lipsync dub /shows/x/010/plate.####.exr /shows/x/010/dub_de.wav -o /shows/x/010/dub/010_de.####.exr \\
        --frames <START>-<END> --resume --device cuda
    # e.g. --frames 1001-1050, --frames 1051-1100, ...

Every chunk of a shot must use the same model, sidecar, --audio-offset and --batch (--batch sets how
frames are grouped: a different value moves results by rounding). `--resume` makes a re-queued
(pre-empted, failed) chunk continue from its first missing frame instead of starting over; each
frame file is written whole or not at all, and a chunk rendered with other settings than the frames already
there is refused. Chunks of one sequence may run at once; two renders of the same frames may not. Skipping step 1 still gives the same frames, but every
chunk then tracks the whole shot itself.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from ..crash_log import unexpected
from ..errors import LipSyncError
from ..ops.cli import add_arguments, frame_range
from ..ops.farm import ENGINES, FARM_JOB
from ..textfiles import csv_delimiter, parse_json, read_text
from .cli import ProgressBars, add_render_options
from .outputs import output_kind
from .pipeline import dub

FIELDS = {"plate", "audio", "frames", "output", "model", "shot", "audio_offset", "face", "appearance", "actor"}
REQUIRED = ("plate", "output")
PATHS = ("plate", "audio", "output", "model", "shot", "actor")  # the fields naming one file, relative to the list
CLIP_SEPARATOR = "|"  # between the clips of a CSV appearance cell: ',' and ';' may separate the cells themselves


@dataclass
class Outcome:
    shot: str
    frames: str
    status: str  # 'done' | 'skipped' | 'failed'
    detail: str


def read_shot_list(path: Path) -> list[dict]:
    """The rows of a JSON or CSV shot list, as dicts of the given (non-empty) fields. A list without a shot
    is an error: a batch that renders nothing must not look like one that succeeded."""
    if path.suffix.lower() not in (".json", ".csv"):
        raise LipSyncError(f"{path}: a shot list is .json or .csv")
    text = read_text(path, "shot list", LipSyncError)
    if path.suffix.lower() == ".json":
        data = parse_json(text, path, "shot list", LipSyncError)
        rows = data.get("shots") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise LipSyncError(f'{path}: expected a list of shots, or {{"shots": [...]}}, each an object')
    else:
        lines = text.splitlines()
        rows = list(csv.DictReader(lines, delimiter=csv_delimiter(lines[0] if lines else "")))
    rows = [{k.strip(): v for k, v in row.items() if k and v not in (None, "")} for row in rows]
    if not any(rows):
        raise LipSyncError(f"{path}: holds no shots: give one {'row' if path.suffix.lower() == '.csv' else 'object'} per "
                           f"shot with at least plate and output (see `lipsync batch --help`)")
    return rows


def run_shot(row: dict, folder: Path, defaults: argparse.Namespace, force: bool, progress) -> Outcome:
    """Render one row; every problem becomes a 'failed' outcome with its reason."""
    label = str(row.get("plate", "?"))
    frames_text = str(row.get("frames", "all"))
    try:
        unknown = sorted(set(row) - FIELDS)
        if unknown:
            raise LipSyncError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})")
        for name in REQUIRED:
            if name not in row:
                raise LipSyncError(f"no {name} given")
        path = {name: folder / str(row[name]) for name in PATHS if name in row}
        frames = row.get("frames")
        if isinstance(frames, list) and len(frames) == 2:
            frames = (int(frames[0]), int(frames[1]))
        elif frames is not None:
            try:
                frames = frame_range(str(frames))
            except argparse.ArgumentTypeError as error:
                raise LipSyncError(str(error)) from None
        sequence = output_kind(path["output"]) in ("exr", "png")
        if not sequence and path["output"].exists() and not force:
            return Outcome(label, frames_text, "skipped", f"{path['output']} exists (--force renders it again)")
        report = dub(
            path["plate"], path.get("audio"), path["output"], frames=frames, resume=sequence and not force, overwrite=force,
            shot=path.get("shot"), face=_face(row["face"]) if "face" in row else defaults.face,
            audio_offset=row.get("audio_offset", defaults.audio_offset), model=path.get("model", defaults.model),
            mouth=defaults.mouth, motion_model=defaults.motion_model, device=defaults.device, batch=defaults.batch,
            appearance=appearance_clips(row, folder), actor=path.get("actor"), colourspace=defaults.colourspace,
            ocio=defaults.ocio, progress=progress,
        )
    except LipSyncError as error:
        return Outcome(label, frames_text, "failed", str(error))
    except Exception as error:  # a bug in one shot must not stop the batch; the reason still shows, the traceback is logged
        return Outcome(label, frames_text, "failed", unexpected(error, "batch"))
    rendered = len(report.dubbed) + sum(len(f) for f in report.passed.values())
    if report.resumed_from is not None and rendered == 0:
        return Outcome(label, frames_text, "skipped", f"{path['output']}: every frame already rendered")
    return Outcome(label, f"{report.first}-{report.last}", "done", "; ".join(report.lines()))


def appearance_clips(row: dict, folder: Path) -> list[Path]:
    """A row's appearance clips: a JSON list or one path, or a CSV cell of paths separated by '|'."""
    value = row.get("appearance", [])
    if isinstance(value, str):
        value = value.split(CLIP_SEPARATOR)
    if not isinstance(value, list) or not all(isinstance(clip, str) for clip in value):
        raise LipSyncError(f"appearance {value!r}: give clips of the actor, as a list of paths or separated by "
                           f"'{CLIP_SEPARATOR}'")
    return [folder / clip.strip() for clip in value if clip.strip()]


def _face(value) -> int:
    """A row's face: a whole number, 0 or more (a CSV cell is text, a JSON value a number)."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise LipSyncError(f"face {value!r}: must be a whole number, 0 or more (0 = the largest face)")
    return int(text)


def table(outcomes: list[Outcome]) -> str:
    """The summary a pipeline TD reads: one line per shot, then the counts."""
    headers = ("#", "shot", "frames", "status", "detail")
    rows = [(str(i), o.shot, o.frames, o.status, o.detail) for i, o in enumerate(outcomes, 1)]
    widths = [max(len(r[c]) for r in [headers, *rows]) for c in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r[:4], widths)) + "  " + r[4] for r in [headers, *rows]]
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="dub every shot of a shot list (JSON or CSV), with a summary at the end",
        description="Dub the shots of SHOTLIST in order: fields plate, output (required), audio, frames, "
        "audio_offset, face, model, shot, appearance (clips of the actor, separated by '|'), actor (an actor file); "
        "paths relative to the shot list. Options below are the defaults "
        "for shots that do not set them. A failed shot does not stop the others; the exit status is 1 "
        "when any failed. With --farm, the shots are written as a render-farm job instead (`lipsync farm job`).",
    )
    parser.add_argument("shotlist", type=Path, help="shot list: .json or .csv")
    parser.add_argument("--force", action="store_true", help="render shots whose output already exists again")
    add_render_options(parser)
    parser.add_argument("--farm", choices=ENGINES, help="write a job for this farm engine instead of rendering here")
    parser.add_argument("--job", type=Path, help="the job folder --farm writes (default: beside the shot list, SHOTLIST.job)")
    add_arguments(parser, [FARM_JOB.param("chunk_size"), FARM_JOB.param("lipsync")])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.farm:
        from ..farm.cli import run_job

        job = args.job or args.shotlist.with_name(args.shotlist.stem + ".job")
        return run_job(argparse.Namespace(**vars(args), sources=[args.shotlist], output=job, engine=args.farm))
    if args.job:
        raise LipSyncError("--job names the folder for --farm: give --farm openjd or --farm opencue too")
    rows = read_shot_list(args.shotlist)
    outcomes = []
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row.get('plate', '?')}", flush=True)
        bars = ProgressBars()
        try:
            outcomes.append(run_shot(row, args.shotlist.parent, args, args.force, bars))
        finally:
            bars.close()
    print(table(outcomes))
    return 1 if any(o.status == "failed" for o in outcomes) else 0
