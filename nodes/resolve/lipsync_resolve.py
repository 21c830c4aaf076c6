"""LipSync for DaVinci Resolve: dub timeline clips, non-destructively, as a new take of each clip.

    python lipsync_resolve.py DUB.wav [--flag Green] [--output-dir DIR] [dub options: --model, --audio-offset, ...]

Run it while Resolve is running (external scripting allowed in Preferences > System > General), with
Resolve's scripting module on the path (RESOLVE_SCRIPT_API / PYTHONPATH, as Resolve's scripting
README says), or put it in Resolve's Scripts/Edit folder.

Which clips: Resolve's scripting API has no call for the clips selected on the timeline, so it is the
video clip under the playhead (Timeline.GetCurrentVideoItem), or with --flag COLOR every video clip
carrying a flag of that colour.

For each clip: the part of its media the edit uses (the source range: GetLeftOffset frames into the
media file from MediaPoolItem.GetClipProperty("File Path"), GetDuration frames long) is dubbed by
`lipsync dub` in a worker process (a crash there cannot take Resolve down) into a ProRes 4444 .mov
with the blend mask as alpha and the dub as its audio. The dub starts at the clip's first frame
(plus --audio-offset). The .mov is imported into the media pool (MediaPool.ImportMedia) and added to
the timeline clip as a take (TimelineItem.AddTake), which is selected (SelectTakeByIndex): the
original stays as the first take, so nothing is lost and the editor can switch back.

The options are the generate operation's parameters (lipsync_core.ops), spelled as `lipsync dub`
spells them; the frame range and the output are set from the clip. HOST_OPTIONS are this script's own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# The repository holds lipsync_core; this file is nodes/resolve/ in it (a link to it is followed).
REPO = Path(os.path.realpath(__file__)).parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lipsync_core.dub.timing import offset_seconds  # noqa: E402 (after the path is set)
from lipsync_core.dub.worker import cli_arguments, command, run  # noqa: E402
from lipsync_core.errors import LipSyncError  # noqa: E402
from lipsync_core.ops import operation  # noqa: E402
from lipsync_core.ops.cli import add_arguments  # noqa: E402

OPERATION = "generate"
# The operation's pictures come from the timeline clip (plate, frames) or go back to it (output, mask).
PICTURES = ("plate", "output", "mask")
HOST_OPTIONS = ("flag", "output_dir")
# Resolve names an image sequence's file as name.[1001-1100].exr.
SEQUENCE = re.compile(r"^(?P<head>.*)\[(?P<first>\d+)-(?P<last>\d+)\](?P<tail>[^\[\]]*)$")


def node_params(op) -> list:
    return [p for p in op.all() if p.node and p.name not in PICTURES]


def build_parser(op) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lipsync_resolve.py",
        description="Dub the clip under Resolve's playhead (or every clip with --flag) with AUDIO and add the "
        "result to each clip as a new take. Options are those of `lipsync dub`.",
    )
    add_arguments(parser, node_params(op))
    parser.add_argument("--flag", metavar="COLOR", help="dub every video clip flagged with this colour (e.g. Green) "
                        "instead of the clip under the playhead")
    parser.add_argument("--output-dir", type=Path, help="folder for the dubbed clips (default: 'lipsync' beside each clip's media)")
    return parser


def connect():
    """Resolve's scripting object."""
    try:
        import DaVinciResolveScript
    except ImportError:
        raise LipSyncError("DaVinciResolveScript not found: add Resolve's Developer/Scripting/Modules to PYTHONPATH") from None
    resolve = DaVinciResolveScript.scriptapp("Resolve")
    if resolve is None:
        raise LipSyncError("DaVinci Resolve is not running, or external scripting is off (Preferences > System > General)")
    return resolve


def chosen_items(timeline, flag: str | None) -> list:
    """The clip under the playhead, or every video clip flagged `flag`."""
    if flag is None:
        item = timeline.GetCurrentVideoItem()
        if item is None:
            raise LipSyncError("no video clip under the playhead")
        return [item]
    items = [
        item for track in range(1, timeline.GetTrackCount("video") + 1)
        for item in timeline.GetItemListInTrack("video", track) or []
        if flag in (item.GetFlagList() or [])
    ]
    if not items:
        raise LipSyncError(f"no video clip is flagged {flag}")
    return items


def plate_of(file_path: str) -> tuple[str, int]:
    """The plate as `lipsync` names it, and its first frame's number: a video file starts at 0, a
    sequence at its first file's number (name.[1001-1100].exr -> name.####.exr, 1001)."""
    match = SEQUENCE.match(file_path)
    if match is None:
        return file_path, 0
    return match["head"] + "#" * len(match["first"]) + match["tail"], int(match["first"])


def _rate(text) -> float:
    """A frame rate as Resolve writes it: '25', '29.97', '29.97 DF'."""
    return float(str(text).split()[0])


def _free_name(folder: Path, stem: str) -> Path:
    """stem_v001.mov, or the next version: earlier dubs of the clip stay (they are takes too)."""
    version = 1
    while (folder / f"{stem}_v{version:03d}.mov").exists():
        version += 1
    return folder / f"{stem}_v{version:03d}.mov"


def dub_item(item, args: argparse.Namespace, op, timeline_fps: float, pool) -> Path:
    """Dub one timeline clip's source range and add the result to it as the selected take."""
    media = item.GetMediaPoolItem()
    if media is None:
        raise LipSyncError("it has no media file (a title or a generator)")
    clip_fps = _rate(media.GetClipProperty("FPS"))
    if abs(clip_fps - timeline_fps) > 1e-3:
        # The item's offsets count timeline frames; a clip at another rate would need retiming first.
        raise LipSyncError(f"its media runs at {clip_fps:g} fps and the timeline at {timeline_fps:g}: dub clips at the timeline's rate")
    file_path = media.GetClipProperty("File Path")
    plate, plate_first = plate_of(file_path)
    left, duration = int(item.GetLeftOffset()), int(item.GetDuration())
    first, last = plate_first + left, plate_first + left + duration - 1
    # `lipsync dub` plays the dub from the plate's first frame (minus the offset): moving it by the
    # frames before the source range makes it start at the clip's first frame.
    offset = left / clip_fps + offset_seconds(args.audio_offset, clip_fps)

    folder = args.output_dir or Path(file_path).parent / "lipsync"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(plate).name.split(".")[0]) or "clip"
    output = _free_name(folder, f"{stem}_{first}-{last}_lipsync")
    values = {p.name: getattr(args, p.name) for p in node_params(op)}
    values.update(plate=plate, output=str(output), frames=(first, last), audio_offset=f"{offset:.6f}s", progress_json=True)
    shown = set()

    def progress(stage: str, done: int, total: int) -> None:
        step = (stage, 10 * done // max(total, 1))
        if step not in shown:  # Resolve's console: a line per tenth, not one per frame
            shown.add(step)
            print(f"  {stage} {done}/{total}", flush=True)

    for line in run(command(cli_arguments(op, values)), progress):
        print(f"  {line}")

    imported = pool.ImportMedia([str(output)])
    if not imported:
        raise LipSyncError(f"Resolve could not import {output}")
    if not item.AddTake(imported[0]):
        raise LipSyncError(f"Resolve would not add {output.name} as a take")
    item.SelectTakeByIndex(item.GetTakesCount())
    return output


def main(argv: list[str] | None = None) -> int:
    op = operation(OPERATION)
    args = build_parser(op).parse_args(argv)
    try:
        project = connect().GetProjectManager().GetCurrentProject()
        timeline = project.GetCurrentTimeline() if project else None
        if timeline is None:
            raise LipSyncError("no timeline is open")
        items = chosen_items(timeline, args.flag)
        timeline_fps = _rate(timeline.GetSetting("timelineFrameRate"))
    except LipSyncError as error:
        print(f"lipsync: {error}", file=sys.stderr)
        return 2
    pool = project.GetMediaPool()
    failed = 0
    for i, item in enumerate(items, 1):
        print(f"[{i}/{len(items)}] {item.GetName()}", flush=True)
        try:
            output = dub_item(item, args, op, timeline_fps, pool)
        except LipSyncError as error:
            print(f"  {item.GetName()}: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"  added {output} as take {item.GetTakesCount()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
