"""`lipsync probe MEDIA`: what a dubber needs to know about a plate before starting."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .frames import PlateInfo, open_plate


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="show a plate's format, frame range, rate, audio and sync warnings",
        description="Show container, codec, resolution, frame rate (and whether it varies), frame range, "
        "duration, audio streams, and warnings such as variable frame rate or audio/video length mismatch.",
    )
    parser.add_argument("media", help="video file, image sequence pattern (plate.####.exr) or one frame of it")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with open_plate(args.media) as plate:
        info = plate.info
    notes = warnings(info)
    if args.json:
        report = asdict(info)
        report["path"] = str(info.path)
        report["warnings"] = notes
        print(json.dumps(report, indent=2))
    else:
        print(describe(info, notes))
    return 0


def warnings(info: PlateInfo) -> list[str]:
    """Sentences about the plate that change how a dub must be prepared."""
    notes = list(info.warnings)
    frame = 1.0 / info.fps
    if info.variable_fps:
        slowest, fastest = info.fps_range
        notes.append(
            f"variable frame rate: {slowest:.3f}-{fastest:.3f} fps, {info.source_fps:.3f} on average, {info.fps:.3f} nominal; "
            f"frames are timed by their timestamps (conform to a constant rate to render a fixed-rate result)"
        )
    if info.kind == "video" and not info.audio:
        notes.append("no audio stream: give the dub as a separate audio file")
    video_end = info.start_time + info.duration
    for stream in info.audio:
        label = f"audio #{stream.index}" if len(info.audio) > 1 else "audio"
        gap = stream.start_time - info.start_time
        if abs(gap) >= frame / 2:
            when = "after" if gap > 0 else "before"
            notes.append(f"{label} starts {abs(gap):.3f} s ({abs(gap) / frame:.1f} frames) {when} the first frame")
        if stream.duration is not None:
            end_gap = stream.start_time + stream.duration - video_end
            if abs(end_gap) >= frame / 2:
                when = "after" if end_gap > 0 else "before"
                notes.append(
                    f"{label} ends {abs(end_gap):.3f} s ({abs(end_gap) / frame:.1f} frames) {when} the last frame"
                )
    if info.kind == "video" and (info.width % 2 or info.height % 2):
        notes.append(f"odd size {info.width}x{info.height}: an H.264 result is impossible; render ProRes, EXR or PNG")
    return notes


def describe(info: PlateInfo, notes: list[str]) -> str:
    rate = f"{info.fps:.3f}".rstrip("0").rstrip(".") + " fps"
    rate += f" variable ({info.source_fps:.3f} average)" if info.variable_fps else " constant"
    lines = [
        str(Path(info.path)),
        f"  container   {info.container}",
        f"  {info.kind:<11} {info.codec} {info.width}x{info.height} {info.channels}ch {info.dtype}, {rate}",
        f"  frames      {info.first}-{info.last} ({info.frame_count} frame{'s' if info.frame_count != 1 else ''}), "
        f"{info.duration:.3f} s"
        + (f", first frame at {info.start_time:.3f} s" if info.start_time else ""),
    ]
    if info.rotation:
        lines.append(f"  rotation    {info.rotation} degrees clockwise on playback (display matrix): frames are read "
                     f"and written upright, {info.width}x{info.height}")
    for stream in info.audio:
        duration = f"{stream.duration:.3f} s" if stream.duration is not None else "length unknown"
        lines.append(
            f"  audio #{stream.index}    {stream.codec} {stream.sample_rate} Hz {stream.channels}ch, {duration}"
            + (f", starts at {stream.start_time:.3f} s" if stream.start_time else "")
        )
    if not info.audio:
        lines.append("  audio       none")
    lines += [f"warning: {note}" for note in notes]
    return "\n".join(lines)
