"""LipSync for DaVinci Resolve: dub timeline clips, non-destructively, as a new take of each clip.

From Resolve's menu (Workspace > Scripts > lipsync_resolve, after copying or linking this file into
Resolve's Scripts/Edit folder) it opens a small dialog: the dub audio, which clips, the output folder.
From a shell, with Resolve running and external scripting allowed (Preferences > System > General):

    python lipsync_resolve.py DUB.wav [--flag Green] [--output-dir DIR] [dub options: --model, --audio-offset, ...]

The dub audio is the new dialogue of the whole timeline, starting at the timeline's first frame: each
clip is dubbed with the part of it under the clip's place on the timeline (TimelineItem.GetStart
against Timeline.GetStartFrame), so several clips each hear their own lines. Or it is an audio track of
the timeline (--audio-track N): for each clip, Resolve's render queue renders that track alone (the
other audio tracks disabled meanwhile, then restored) under the clip's timeline range, audio only, into
the project folder, and the clip is dubbed with that.

Which clips: Resolve's scripting API has no call for the clips selected on the timeline, so it is the
video clip under the playhead (Timeline.GetCurrentVideoItem), or every video clip carrying a flag of
the chosen colour.

For each clip: the part of its media the edit uses (GetSourceStartFrame..GetSourceEndFrame frames
into the media file from MediaPoolItem.GetClipProperty("File Path"); GetLeftOffset and GetDuration on
Resolve versions without them) is dubbed by `lipsync dub` in the worker process
(lipsync_core/dub/worker.py: a crash there cannot take Resolve down) into a ProRes 4444 .mov with the
blend mask as alpha and the dub as its audio. A retimed clip (its source frames do not play one per
timeline frame) is refused with a message. Camera RAW (BRAW, R3D, ARRIRAW... by extension) is not read
directly: Resolve decodes it, rendering the clip's source range with --handles frames either side
(a temporary timeline of that range, through the render queue) to a ProRes 4444 intermediate in the
project folder, and that is dubbed; the take then plays the clip's own range of it. Everything the
script writes goes to the project folder (--output-dir, default LipSync/PROJECT in the home folder),
never beside camera media. The .mov is imported into the media pool
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
import time
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
HOST_OPTIONS = ("flag", "output_dir", "audio_track", "handles")
# Camera RAW, by extension: Resolve decodes it (its RAW settings), lipsync does not read it.
RAW_EXTENSIONS = (".braw", ".r3d", ".ari", ".arx", ".crm", ".dng", ".nev", ".cine")
RENDER_POLL = 1.0  # seconds between two looks at Resolve's render queue
DEFAULT_HANDLES = 12
# Resolve names an image sequence's file as name.[1001-1100].exr.
SEQUENCE = re.compile(r"^(?P<head>.*)\[(?P<first>\d+)-(?P<last>\d+)\](?P<tail>[^\[\]]*)$")
FLAGS = ("Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky", "Mint",
         "Lemon", "Sand", "Cocoa", "Cream")
UNDER_PLAYHEAD = "the clip under the playhead"
AUDIO_FILE, AUDIO_TRACK = "the file below", "timeline audio track {}"
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
        if param.flag is None:  # the dub audio: a file, unless --audio-track names a track of the timeline
            parser.add_argument(param.name, nargs="?", help=param.help + " (or --audio-track)")
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
    parser.add_argument("--output-dir", type=Path, help="the project folder: dubbed clips, rendered audio and RAW "
                        "intermediates (default: LipSync/PROJECT in the home folder)")
    parser.add_argument("--audio-track", type=int, metavar="N", help="dub each clip with the timeline's audio track N "
                        "under it (rendered by Resolve) instead of an audio file")
    parser.add_argument("--handles", type=int, default=DEFAULT_HANDLES, metavar="FRAMES",
                        help="frames rendered either side of a camera RAW clip's range (default: %(default)s)")
    return parser


def check_arguments(parser, args):
    """One dub audio: a file or a track."""
    if (args.audio is None) == (args.audio_track is None):
        parser.error("give the dub audio: a file, or --audio-track N")
    if args.handles < 0:
        parser.error("--handles {}: at least 0".format(args.handles))
    return args


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


def ask(resolve, bmd, audio_tracks):
    """The script's arguments from a small dialog (Fusion's UIManager); None when the user cancels. The dub is a
    file, or one of the timeline's `audio_tracks` audio tracks."""
    if not hasattr(bmd, "UIDispatcher"):
        raise LipSyncError("no dialog outside Resolve: give the dub audio as an argument (--help)")
    fusion = resolve.Fusion()
    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)

    def row(label, *widgets):
        return ui.HGroup([ui.Label({"Text": label, "Weight": 0, "MinimumSize": [90, 0]})] + list(widgets))

    window = dispatcher.AddWindow({"ID": "LipSync", "WindowTitle": "LipSync dub", "Geometry": [200, 200, 560, 170]}, ui.VGroup([
        row("Dub from", ui.ComboBox({"ID": "AudioSource"})),
        row("Dub audio", ui.LineEdit({"ID": "Audio", "PlaceholderText": "the new dialogue of the whole timeline (.wav)"}),
            ui.Button({"ID": "BrowseAudio", "Text": "Browse...", "Weight": 0})),
        row("Clips", ui.ComboBox({"ID": "Clips"})),
        row("Project folder", ui.LineEdit({"ID": "Output", "PlaceholderText": "default: LipSync/PROJECT in your home folder"}),
            ui.Button({"ID": "BrowseOutput", "Text": "Browse...", "Weight": 0})),
        ui.HGroup([ui.HGap(), ui.Button({"ID": "Cancel", "Text": "Cancel", "Weight": 0}),
                   ui.Button({"ID": "Dub", "Text": "Dub", "Weight": 0})]),
    ]))
    items = window.GetItems()
    items["AudioSource"].AddItems([AUDIO_FILE] + [AUDIO_TRACK.format(i) for i in range(1, audio_tracks + 1)])
    items["Clips"].AddItems([UNDER_PLAYHEAD] + ["clips flagged " + flag for flag in FLAGS])
    chosen = []

    def browse(field, request):
        def clicked(event):
            path = request()
            if path:
                items[field].Text = str(path)
        return clicked

    def dub(event):
        source = items["AudioSource"].CurrentText
        if source != AUDIO_FILE:
            chosen.append(["--audio-track", source.split()[-1]])
        elif items["Audio"].Text.strip():
            chosen.append([items["Audio"].Text.strip()])
        else:
            items["Audio"].PlaceholderText = "choose the dub audio file first"
            return
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


def _free_name(folder, stem, extension=".mov"):
    """stem_v001.mov, or the next version: earlier dubs of the clip stay (they are takes too)."""
    version = 1
    while (folder / "{}_v{:03d}{}".format(stem, version, extension)).exists():
        version += 1
    return folder / "{}_v{:03d}{}".format(stem, version, extension)


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


def _safe_name(text):
    """A file name from a clip's or a project's name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "clip"


def render(project, settings, name, folder, extension, codec_wanted):
    """Render the current timeline through Resolve's render queue (format `extension`, the codec whose name or
    description `codec_wanted` accepts, `settings` for SetRenderSettings) into folder/name.EXT, wait for it, and
    return the file. The job leaves the queue and the render format and codec are put back, whatever happens."""
    if extension not in (project.GetRenderFormats() or {}).values():
        raise LipSyncError("this Resolve cannot render .{} files".format(extension))
    codecs = project.GetRenderCodecs(extension) or {}
    codec = next((c for description, c in codecs.items() if codec_wanted(description, c)), None)
    if codec is None:
        raise LipSyncError("this Resolve has no suitable codec for .{} (it has {})".format(extension, ", ".join(codecs) or "none"))
    previous = project.GetCurrentRenderFormatAndCodec()
    if not project.SetCurrentRenderFormatAndCodec(extension, codec):
        raise LipSyncError("Resolve refused the render format {} {}".format(extension, codec))
    try:
        project.SetCurrentRenderMode(1)  # a single clip
        if not project.SetRenderSettings(dict(settings, TargetDir=str(folder), CustomName=name)):
            raise LipSyncError("Resolve refused the render settings for {}".format(name))
        job = project.AddRenderJob()
        if not job:
            raise LipSyncError("Resolve would not queue the render of {}".format(name))
        try:
            if not project.StartRendering([job]):
                raise LipSyncError("Resolve would not start the render of {}".format(name))
            while project.IsRenderingInProgress():
                time.sleep(RENDER_POLL)
            status = project.GetRenderJobStatus(job) or {}
            if status.get("JobStatus") != "Complete":
                raise LipSyncError("Resolve's render of {} ended {}".format(name, status.get("JobStatus", "without a status")))
            entry = next(j for j in project.GetRenderJobList() if j.get("JobId") == job)
            path = Path(entry["TargetDir"]) / entry["OutputFilename"]
        finally:
            project.DeleteRenderJob(job)
    finally:
        if previous:
            project.SetCurrentRenderFormatAndCodec(previous["format"], previous["codec"])
    if not path.is_file():
        raise LipSyncError("Resolve's render of {} left no file at {}".format(name, path))
    return path


def track_audio(project, timeline, item, track, folder, name):
    """The timeline's audio track `track` alone under the clip's place on the timeline, rendered by Resolve into
    folder/name.wav: the other audio tracks are disabled for the render and put back after it."""
    count = int(timeline.GetTrackCount("audio"))
    if not 1 <= track <= count:
        raise LipSyncError("the timeline has no audio track {} (it has {})".format(track, count))
    enabled = {i: bool(timeline.GetIsTrackEnabled("audio", i)) for i in range(1, count + 1)}
    try:
        for i in enabled:
            timeline.SetTrackEnable("audio", i, i == track)
        settings = {"SelectAllFrames": False, "MarkIn": int(item.GetStart()), "MarkOut": int(item.GetEnd()) - 1,
                    "ExportVideo": False, "ExportAudio": True}
        return render(project, settings, name, folder, "wav",
                      lambda description, codec: "pcm" in (description + codec).lower())
    finally:
        for i, on in enabled.items():
            timeline.SetTrackEnable("audio", i, on)


def raw_intermediate(project, timeline, media, start, count, handles, folder, name):
    """Camera RAW decoded by Resolve: the media's frames start..start+count-1 with up to `handles` frames either
    side (as far as the media has them), on a temporary timeline rendered to a ProRes 4444 .mov in `folder`.
    Returns (the .mov, the index of the clip's first frame in it, its frame count)."""
    total = int(media.GetClipProperty("Frames") or 0)
    lead = min(handles, start)
    tail = min(handles, total - start - count) if total else handles
    pool = project.GetMediaPool()
    clip = {"mediaPoolItem": media, "startFrame": start - lead, "endFrame": start + count + tail - 1}
    temporary = pool.CreateTimelineFromClips("{} (LipSync render)".format(name), [clip])
    if temporary is None:
        raise LipSyncError("Resolve could not make a timeline of the clip's range to render it")
    try:
        project.SetCurrentTimeline(temporary)
        settings = {"SelectAllFrames": True, "ExportVideo": True, "ExportAudio": False}
        path = render(project, settings, name, folder, "mov", lambda description, codec: codec == "ProRes4444")
    finally:
        project.SetCurrentTimeline(timeline)
        pool.DeleteTimelines([temporary])
    return path, lead, lead + count + tail


def dub_item(item, args, node_params, timeline, project, folder):
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
    folder.mkdir(parents=True, exist_ok=True)
    name = "{}_{}-{}".format(_safe_name(Path(plate).name.split(".")[0]), first, last)
    take = None  # the take's extents in the dubbed file: all of it, unless it carries handles
    if Path(file_path).suffix.lower() in RAW_EXTENSIONS:
        print("  rendering the camera RAW through Resolve", flush=True)
        intermediate, start, frames = raw_intermediate(project, timeline, media, start, count, args.handles, folder,
                                                       _free_name(folder, name + "_decoded").stem)
        plate, render_range, take = str(intermediate), [0, frames - 1], (start, start + count - 1)
    else:
        render_range = [first, last]
    if args.audio_track is not None:
        audio = track_audio(project, timeline, item, args.audio_track, folder,
                            _free_name(folder, "{}_track{}".format(name, args.audio_track), ".wav").stem)
        record_s = 0.0  # the rendered audio starts at the clip's first frame
    else:
        audio = args.audio
        record_s = (int(item.GetStart()) - int(timeline.GetStartFrame())) / timeline_fps
    # `lipsync dub` plays dub time (frame - plate's first frame) / fps - offset; at the clip's first frame
    # (`start` frames into the plate) that must be where the clip sits in the dub audio, moved by --audio-offset.
    offset = start / clip_fps - record_s + offset_seconds(args.audio_offset, clip_fps)

    output = _free_name(folder, name + "_lipsync")
    values = {p.name: getattr(args, p.name) for p in node_params}
    values.update(plate=plate, audio=str(audio), output=str(output), frames=render_range,
                  audio_offset="{:.6f}s".format(offset), progress_json=True)
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

    imported = project.GetMediaPool().ImportMedia([str(output)])
    if not imported:
        raise LipSyncError("Resolve could not import {}".format(output))
    added = item.AddTake(imported[0], *take) if take else item.AddTake(imported[0])
    if not added:
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
            args = check_arguments(parser, parser.parse_args(argv))
        bmd = scripting()
        resolve = connect(bmd)
        project = resolve.GetProjectManager().GetCurrentProject()
        timeline = project.GetCurrentTimeline() if project else None
        if timeline is None:
            raise LipSyncError("no timeline is open")
        if not argv:
            chosen = ask(resolve, bmd, timeline.GetTrackCount("audio"))
            if chosen is None:
                return 0
            args = check_arguments(parser, parser.parse_args(chosen))
        items = chosen_items(timeline, args.flag)
    except LipSyncError as error:
        print("lipsync: {}".format(error), file=sys.stderr)
        return 2
    folder = args.output_dir or Path.home() / "LipSync" / _safe_name(project.GetName())
    failed = 0
    for i, item in enumerate(items, 1):
        print("[{}/{}] {}".format(i, len(items), item.GetName()), flush=True)
        try:
            output = dub_item(item, args, node, timeline, project, folder)
        except LipSyncError as error:
            print("  {}: {}".format(item.GetName(), error), file=sys.stderr)
            failed += 1
            continue
        print("  added {} as take {}".format(output, item.GetTakesCount()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
