"""LipSync for DaVinci Resolve: dub timeline clips, non-destructively, as a new take of each clip.

From Resolve's menu (Workspace > Scripts > lipsync_resolve, after copying or linking this file into
Resolve's Scripts/Edit folder) it opens a small dialog: the dub audio, which clips, the output folder.
From a shell, with Resolve running and external scripting allowed (Preferences > System > General):

    python lipsync_resolve.py DUB.wav [--flag Green] [--output-dir DIR] [dub options: --model, --audio-offset, ...]

The dub audio is the new dialogue of the whole timeline, starting at the timeline's first frame: each
clip is dubbed with the part of it under the clip's place on the timeline (TimelineItem.GetStart
against Timeline.GetStartFrame), so several clips each hear their own lines.

Which clips: Resolve's scripting API has no call for the clips selected on the timeline, so it is the
video clip under the playhead (Timeline.GetCurrentVideoItem), or every video clip carrying a flag of
the chosen colour.

For each clip: the part of its media the edit uses (GetSourceStartFrame..GetSourceEndFrame frames
into the media file from MediaPoolItem.GetClipProperty("File Path"); GetLeftOffset and GetDuration on
Resolve versions without them) is dubbed by `lipsync dub` in the worker process
(lipsync_core/dub/worker.py: a crash there cannot take Resolve down) into a ProRes 4444 .mov with the
blend mask as alpha and the dub as its audio. A retimed clip (its source frames do not play one per
timeline frame) is refused with a message. The .mov is imported into the media pool
(MediaPool.ImportMedia) and added to the timeline clip as a take (TimelineItem.AddTake), which is
selected (SelectTakeByIndex): the original stays as the first take, so the editor can switch back.

Standard library only and valid Python 3.6 (the oldest Python Resolve documents): the options are the
generate operation's parameters as plugin.json lists them, spelled as `lipsync dub` spells them; the
frame range and the output are set from the clip. HOST_OPTIONS are this script's own.
"""

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
from lipsync_core.dub.worker import params, submit  # noqa: E402
from lipsync_core.errors import LipSyncError  # noqa: E402

OPERATION = "generate"
# The operation's pictures come from the timeline clip (plate, frames) or go back to it (output, mask).
PICTURES = ("plate", "output", "mask")
HOST_OPTIONS = ("flag", "output_dir")
# Resolve names an image sequence's file as name.[1001-1100].exr.
SEQUENCE = re.compile(r"^(?P<head>.*)\[(?P<first>\d+)-(?P<last>\d+)\](?P<tail>[^\[\]]*)$")
FLAGS = ("Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky", "Mint",
         "Lemon", "Sand", "Cocoa", "Cream")
UNDER_PLAYHEAD = "the clip under the playhead"
TYPES = {"int": int, "float": float}


def node_params():
    return [p for p in params(OPERATION) if p.name not in PICTURES]


def build_parser(node_params):
    parser = argparse.ArgumentParser(
        prog="lipsync_resolve.py",
        description="Dub the clip under Resolve's playhead (or every clip with --flag) with the part of AUDIO under "
        "it on the timeline, and add the result to each clip as a new take. Options are those of `lipsync dub`.",
    )
    for param in node_params:
        if param.flag is None:
            parser.add_argument(param.name, help=param.help)
        elif param.type == "bool":
            parser.add_argument(param.flag, dest=param.name, action="store_false" if param.default else "store_true",
                                help=param.help)
        else:
            # An animatable control not given stays unset, so that a shot sidecar's keys apply.
            parser.add_argument(param.flag, dest=param.name, type=TYPES.get(param.type, str),
                                default=None if param.animatable else param.default, choices=param.choices or None,
                                help=param.help)
    parser.add_argument("--flag", metavar="COLOR", help="dub every video clip flagged with this colour (e.g. Green) "
                        "instead of the clip under the playhead")
    parser.add_argument("--output-dir", type=Path, help="folder for the dubbed clips (default: 'lipsync' beside each clip's media)")
    return parser


def scripting():
    """Resolve's scripting module: `bmd` where Resolve runs the script from its menu, else DaVinciResolveScript."""
    bmd = globals().get("bmd")
    if bmd is not None:
        return bmd
    try:
        import DaVinciResolveScript
    except ImportError:
        raise LipSyncError("DaVinciResolveScript not found: add Resolve's Developer/Scripting/Modules to PYTHONPATH") from None
    return DaVinciResolveScript


def connect(bmd):
    """Resolve's scripting object."""
    resolve = bmd.scriptapp("Resolve")
    if resolve is None:
        raise LipSyncError("DaVinci Resolve is not running, or external scripting is off (Preferences > System > General)")
    return resolve


def ask(resolve, bmd):
    """The script's arguments from a small dialog (Fusion's UIManager); None when the user cancels."""
    if not hasattr(bmd, "UIDispatcher"):
        raise LipSyncError("no dialog outside Resolve: give the dub audio as an argument (--help)")
    fusion = resolve.Fusion()
    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)

    def row(label, *widgets):
        return ui.HGroup([ui.Label({"Text": label, "Weight": 0, "MinimumSize": [90, 0]})] + list(widgets))

    window = dispatcher.AddWindow({"ID": "LipSync", "WindowTitle": "LipSync dub", "Geometry": [200, 200, 560, 170]}, ui.VGroup([
        row("Dub audio", ui.LineEdit({"ID": "Audio", "PlaceholderText": "the new dialogue of the whole timeline (.wav)"}),
            ui.Button({"ID": "BrowseAudio", "Text": "Browse...", "Weight": 0})),
        row("Clips", ui.ComboBox({"ID": "Clips"})),
        row("Output folder", ui.LineEdit({"ID": "Output", "PlaceholderText": "default: 'lipsync' beside each clip's media"}),
            ui.Button({"ID": "BrowseOutput", "Text": "Browse...", "Weight": 0})),
        ui.HGroup([ui.HGap(), ui.Button({"ID": "Cancel", "Text": "Cancel", "Weight": 0}),
                   ui.Button({"ID": "Dub", "Text": "Dub", "Weight": 0})]),
    ]))
    items = window.GetItems()
    items["Clips"].AddItems([UNDER_PLAYHEAD] + ["clips flagged " + flag for flag in FLAGS])
    chosen = []

    def browse(field, request):
        def clicked(event):
            path = request()
            if path:
                items[field].Text = str(path)
        return clicked

    def dub(event):
        if not items["Audio"].Text.strip():
            items["Audio"].PlaceholderText = "choose the dub audio file first"
            return
        chosen.append([items["Audio"].Text.strip()])
        if items["Clips"].CurrentText != UNDER_PLAYHEAD:
            chosen[0] += ["--flag", items["Clips"].CurrentText.split()[-1]]
        if items["Output"].Text.strip():
            chosen[0] += ["--output-dir", items["Output"].Text.strip()]
        dispatcher.ExitLoop()

    window.On.LipSync.Close = lambda event: dispatcher.ExitLoop()
    window.On.Cancel.Clicked = lambda event: dispatcher.ExitLoop()
    window.On.Dub.Clicked = dub
    window.On.BrowseAudio.Clicked = browse("Audio", fusion.RequestFile)
    window.On.BrowseOutput.Clicked = browse("Output", fusion.RequestDir)
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
    return chosen[0] if chosen else None


def chosen_items(timeline, flag):
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
        raise LipSyncError("no video clip is flagged {}".format(flag))
    return items


def plate_of(file_path):
    """The plate as `lipsync` names it, and its first frame's number: a video file starts at 0, a
    sequence at its first file's number (name.[1001-1100].exr -> name.####.exr, 1001)."""
    match = SEQUENCE.match(file_path)
    if match is None:
        return file_path, 0
    return match.group("head") + "#" * len(match.group("first")) + match.group("tail"), int(match.group("first"))


def _rate(text):
    """A frame rate as Resolve writes it: '25', '29.97', '29.97 DF'."""
    return float(str(text).split()[0])


def _free_name(folder, stem):
    """stem_v001.mov, or the next version: earlier dubs of the clip stay (they are takes too)."""
    version = 1
    while (folder / "{}_v{:03d}.mov".format(stem, version)).exists():
        version += 1
    return folder / "{}_v{:03d}.mov".format(stem, version)


def source_range(item):
    """(first, count): the frames of its media the clip plays, counted from the media's start. Refuses a
    retimed clip: the dub would have to be retimed with it."""
    duration = int(item.GetDuration())
    if not hasattr(item, "GetSourceStartFrame"):  # Resolve before 18.5
        return int(item.GetLeftOffset()), duration
    start, end = int(item.GetSourceStartFrame()), int(item.GetSourceEndFrame())
    if end - start != duration:
        raise LipSyncError("it is retimed ({} source frames play over {} timeline frames): dub the clip at 100% "
                           "speed, then retime the dubbed take".format(end - start, duration))
    return start, duration


def dub_item(item, args, node_params, timeline, pool):
    """Dub one timeline clip's source range with the dub audio under it, and add the result to it as the
    selected take."""
    media = item.GetMediaPoolItem()
    if media is None:
        raise LipSyncError("it has no media file (a title or a generator)")
    timeline_fps = _rate(timeline.GetSetting("timelineFrameRate"))
    clip_fps = _rate(media.GetClipProperty("FPS"))
    if abs(clip_fps - timeline_fps) > 1e-3:
        # The item's offsets count timeline frames; a clip at another rate would need retiming first.
        raise LipSyncError("its media runs at {:g} fps and the timeline at {:g}: dub clips at the timeline's rate".format(
            clip_fps, timeline_fps))
    file_path = media.GetClipProperty("File Path")
    plate, plate_first = plate_of(file_path)
    start, count = source_range(item)
    first, last = plate_first + start, plate_first + start + count - 1
    # `lipsync dub` plays dub time (frame - plate's first frame) / fps - offset; at the clip's first frame
    # that must be where the clip sits on the timeline (its record start), moved by --audio-offset.
    record_s = (int(item.GetStart()) - int(timeline.GetStartFrame())) / timeline_fps
    offset = start / clip_fps - record_s + offset_seconds(args.audio_offset, clip_fps)

    folder = args.output_dir or Path(file_path).parent / "lipsync"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(plate).name.split(".")[0]) or "clip"
    output = _free_name(folder, "{}_{}-{}_lipsync".format(stem, first, last))
    values = {p.name: getattr(args, p.name) for p in node_params}
    values.update(plate=plate, output=str(output), frames=[first, last], audio_offset="{:.6f}s".format(offset),
                  progress_json=True)
    shown = set()

    def progress(stage, done, total):
        step = (stage, 10 * done // max(total, 1))
        if step not in shown:  # Resolve's console: a line per tenth, not one per frame
            shown.add(step)
            print("  {} {}/{}".format(stage, done, total), flush=True)

    job = {"operation": OPERATION, "values": values, "shot": None, "script": None,
           "comment": "LipSync dub of Resolve clip {}".format(item.GetName())}
    for line in submit(job, folder, progress):
        print("  " + line)

    imported = pool.ImportMedia([str(output)])
    if not imported:
        raise LipSyncError("Resolve could not import {}".format(output))
    if not item.AddTake(imported[0]):
        raise LipSyncError("Resolve would not add {} as a take".format(output.name))
    item.SelectTakeByIndex(item.GetTakesCount())
    return output


def main(argv=None):
    """Dub the chosen clips; with no arguments (Resolve's Scripts menu) ask for them in a dialog."""
    argv = sys.argv[1:] if argv is None else argv
    node = node_params()
    parser = build_parser(node)
    try:
        if argv:
            args = parser.parse_args(argv)
        bmd = scripting()
        resolve = connect(bmd)
        if not argv:
            chosen = ask(resolve, bmd)
            if chosen is None:
                return 0
            args = parser.parse_args(chosen)
        project = resolve.GetProjectManager().GetCurrentProject()
        timeline = project.GetCurrentTimeline() if project else None
        if timeline is None:
            raise LipSyncError("no timeline is open")
        items = chosen_items(timeline, args.flag)
    except LipSyncError as error:
        print("lipsync: {}".format(error), file=sys.stderr)
        return 2
    pool = project.GetMediaPool()
    failed = 0
    for i, item in enumerate(items, 1):
        print("[{}/{}] {}".format(i, len(items), item.GetName()), flush=True)
        try:
            output = dub_item(item, args, node, timeline, pool)
        except LipSyncError as error:
            print("  {}: {}".format(item.GetName(), error), file=sys.stderr)
            failed += 1
            continue
        print("  added {} as take {}".format(output, item.GetTakesCount()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
