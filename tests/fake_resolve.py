"""A recording stand-in for Resolve's scripting module `DaVinciResolveScript`: only what the LipSync
script calls, returning what Resolve's scripting README documents. `install(timeline)` puts it in
sys.modules; every call that changes the project is appended to `calls`.

Timeline positions are record frames, as Resolve counts them: a timeline starts at 01:00:00:00
(frame 90000 at 25 fps) and GetStart/GetEnd are frames of that count; GetSourceStartFrame and
GetSourceEndFrame are frames into the clip's media, the end exclusive, so that they span GetDuration
frames unless the clip is retimed. Fusion's UIManager (the script's dialog) is faked too: the test
acts as the user in `project.ui.user(window)`, called from the dispatcher's RunLoop, which fails if
the dialog never ends its loop (it would hang Resolve). Standard library only (the bare-interpreter
test runs the script against it).

The render queue is modelled as the README documents it: GetRenderFormats (format -> extension) and
GetRenderCodecs (description -> codec name) list what SetCurrentRenderFormatAndCodec accepts; SetRenderSettings
refuses keys the README does not list; AddRenderJob snapshots the current timeline, format, codec, settings and
the enabled audio tracks as a job; StartRendering starts the jobs, IsRenderingInProgress stays true for a few
looks, and the job's file (TargetDir/CustomName.EXT, as GetRenderJobList names it) is written by
`project.renderer(job)`, which the test sets: what Resolve would render. MarkIn/MarkOut are record frames,
inclusive; CreateTimelineFromClips takes clip infos whose endFrame is inclusive.
"""

from __future__ import annotations

import os
import sys
import types


RENDER_SETTINGS = {"SelectAllFrames", "MarkIn", "MarkOut", "TargetDir", "CustomName", "UniqueFilenameStyle", "ExportVideo",
                   "ExportAudio", "FormatWidth", "FormatHeight", "FrameRate", "PixelAspectRatio", "VideoQuality", "AudioCodec",
                   "AudioBitDepth", "AudioSampleRate", "ColorSpaceTag", "GammaTag", "ExportAlpha", "EncodingProfile",
                   "MultiPassEncode", "AlphaMode", "NetworkOptimization"}
RENDER_FORMATS = {"QuickTime": "mov", "MP4": "mp4", "EXR": "exr", "Wave": "wav"}
RENDER_CODECS = {
    "mov": {"Apple ProRes 422 HQ": "ProRes422HQ", "Apple ProRes 4444": "ProRes4444", "Apple ProRes 4444 XQ": "ProRes4444XQ"},
    "mp4": {"H.264": "H264", "H.265": "H265"},
    "exr": {"RGB half (no compression)": "RGBHalf", "RGB float (no compression)": "RGBFloat"},
    "wav": {"Linear PCM": "LinearPCM"},
}
RENDER_LOOKS = 3  # how many looks at IsRenderingInProgress a render takes


class MediaPoolItem:
    def __init__(self, path: str, fps: float, frames: int = 0):
        self.properties = {"File Path": path, "FPS": f"{fps:g}", "Frames": str(frames) if frames else ""}

    def GetClipProperty(self, name=None):
        return self.properties if name is None else self.properties.get(name, "")


class TimelineItem:
    def __init__(self, name: str, media: MediaPoolItem | None, left: int, duration: int, flags=(), start: int = 90000,
                 source_frames: int | None = None):
        self.name, self.media, self.left, self.duration, self.flags = name, media, left, duration, list(flags)
        self.start = start  # record frame of its first frame
        self.source_frames = duration if source_frames is None else source_frames  # != duration: retimed
        self.takes: list[MediaPoolItem] = []
        self.selected_take = 0
        self.calls: list[tuple] = []

    def GetName(self):
        return self.name

    def GetMediaPoolItem(self):
        return self.media

    def GetLeftOffset(self):
        return self.left

    def GetDuration(self):
        return self.duration

    def GetStart(self):
        return self.start

    def GetEnd(self):
        return self.start + self.duration

    def GetSourceStartFrame(self):
        return self.left

    def GetSourceEndFrame(self):
        return self.left + self.source_frames

    def GetFlagList(self):
        return list(self.flags)

    def AddTake(self, media, startFrame=None, endFrame=None):
        # By default the full clip extents; startFrame/endFrame pick a part of it.
        self.calls.append(("AddTake", media) if startFrame is None else ("AddTake", media, startFrame, endFrame))
        if not self.takes:  # the take selector starts with the clip's own media as take 1
            self.takes.append(self.media)
        self.takes.append(media)
        return True

    def GetTakesCount(self):
        return len(self.takes)

    def SelectTakeByIndex(self, index: int):
        self.calls.append(("SelectTakeByIndex", index))
        self.selected_take = index
        return 1 <= index <= len(self.takes)


class Timeline:
    def __init__(self, items: list[TimelineItem], fps: float, current: int | None = 0, start: int = 90000,
                 audio: list | None = None, name: str = "Timeline 1"):
        self.items, self.fps, self.current, self.start, self.name = items, fps, current, start, name
        # Audio tracks: (file, record frame it starts at) each, as the test lays them out; all enabled.
        self.audio = list(audio or [])
        self.audio_enabled = [True] * len(self.audio)

    def GetName(self):
        return self.name

    def GetIsTrackEnabled(self, kind: str, index: int):
        return self.audio_enabled[index - 1] if kind == "audio" else True

    def SetTrackEnable(self, kind: str, index: int, enabled: bool):
        if kind != "audio" or not 1 <= index <= len(self.audio):
            return False
        self.audio_enabled[index - 1] = bool(enabled)
        return True

    def GetStartFrame(self):
        return self.start

    def GetCurrentVideoItem(self):
        return None if self.current is None else self.items[self.current]

    def GetTrackCount(self, kind: str):
        return {"video": 1, "audio": len(self.audio)}.get(kind, 0)

    def GetItemListInTrack(self, kind: str, index: int):
        return list(self.items) if (kind, index) == ("video", 1) else []

    def GetSetting(self, name: str):
        return {"timelineFrameRate": f"{self.fps:g}"}[name]


class MediaPool:
    def __init__(self, project):
        self.project = project
        self.imported: list[str] = []
        self.timelines: list[Timeline] = []  # made by CreateTimelineFromClips and not deleted

    def ImportMedia(self, paths):
        self.imported += paths
        return [MediaPoolItem(path, 0) for path in paths]

    def CreateTimelineFromClips(self, name, clips):
        items = [TimelineItem(info["mediaPoolItem"].properties["File Path"], info["mediaPoolItem"], info["startFrame"],
                              info["endFrame"] - info["startFrame"] + 1) for info in clips]
        fps = float(clips[0]["mediaPoolItem"].properties["FPS"])
        timeline = Timeline(items, fps, name=name)
        self.timelines.append(timeline)
        self.project.calls.append(("CreateTimelineFromClips", name, [(i.left, i.duration) for i in items]))
        return timeline

    def DeleteTimelines(self, timelines):
        for timeline in timelines:
            self.timelines.remove(timeline)
        self.project.calls.append(("DeleteTimelines", [t.name for t in timelines]))
        return True


class Widget:
    """A UIManager widget: ui.LineEdit({"ID": ..., "Text": ...}), ui.VGroup([children]), ui.HGroup({props}, [...])."""

    def __init__(self, kind: str, *args):
        props = next((a for a in args if isinstance(a, dict)), {})
        self.kind, self.children = kind, next((a for a in args if isinstance(a, list)), [])
        self.ID, self.Text, self.PlaceholderText = props.get("ID"), props.get("Text", ""), props.get("PlaceholderText", "")
        self.items, self.CurrentIndex = [], 0

    def AddItems(self, items) -> None:
        self.items += list(items)

    @property
    def CurrentText(self) -> str:
        return self.items[self.CurrentIndex] if self.items else ""


class UIManager:
    def __init__(self):
        self.user = None  # the test, acting in the dialog: user(window)

    def __getattr__(self, kind: str):
        if kind.startswith("_"):
            raise AttributeError(kind)
        return lambda *args: Widget(kind, *args)


class Handlers:
    """window.On.<ID>.<Event> = function, as UIManager wires events."""

    def __getattr__(self, widget_id: str):
        handlers = types.SimpleNamespace()
        setattr(self, widget_id, handlers)
        return handlers


class Window:
    def __init__(self, props: dict, root: Widget):
        self.props, self.root, self.On, self.shown = props, root, Handlers(), False

    def GetItems(self) -> dict:
        found, pending = {}, [self.root]
        while pending:
            widget = pending.pop()
            pending += widget.children
            if widget.ID:
                found[widget.ID] = widget
        return found

    def Show(self):
        self.shown = True

    def Hide(self):
        self.shown = False


class UIDispatcher:
    def __init__(self, ui: UIManager):
        self.ui, self.window, self.running = ui, None, False

    def AddWindow(self, props: dict, root: Widget) -> Window:
        self.window = Window(props, root)
        return self.window

    def RunLoop(self):
        assert self.window.shown, "the dialog was never shown"
        self.running = True
        self.ui.user(self.window)
        if self.running:
            raise RuntimeError("the dialog never ended its loop: Resolve would hang")

    def ExitLoop(self):
        self.running = False


class Project:
    def __init__(self, timeline: Timeline):
        self.calls: list[tuple] = []
        self.timeline, self.pool = timeline, MediaPool(self)
        self.ui = UIManager()
        self.requested = None  # what fusion.RequestFile / RequestDir return: the user's choice in Resolve's browser
        self.format, self.codec, self.mode, self.settings = "mp4", "H264", 1, {}
        self.jobs: dict[str, dict] = {}
        self.rendering = 0  # looks at IsRenderingInProgress left before the render is done
        self.renderer = None  # the test's stand-in for Resolve's render: renderer(job) writes job["path"]

    def GetName(self):
        return "Reel 1"

    def GetCurrentTimeline(self):
        return self.timeline

    def SetCurrentTimeline(self, timeline):
        self.calls.append(("SetCurrentTimeline", timeline.name))
        self.timeline = timeline
        return True

    def GetMediaPool(self):
        return self.pool

    def GetRenderFormats(self):
        return dict(RENDER_FORMATS)

    def GetRenderCodecs(self, render_format):
        return dict(RENDER_CODECS.get(render_format, {}))

    def GetCurrentRenderFormatAndCodec(self):
        return {"format": self.format, "codec": self.codec}

    def SetCurrentRenderFormatAndCodec(self, render_format, codec):
        if codec not in RENDER_CODECS.get(render_format, {}).values():
            return False
        self.format, self.codec = render_format, codec
        return True

    def SetCurrentRenderMode(self, mode):
        self.mode = mode
        return mode in (0, 1)

    def SetRenderSettings(self, settings):
        if not set(settings) <= RENDER_SETTINGS:
            return False
        self.settings.update(settings)
        return True

    def AddRenderJob(self):
        job_id = "job-{}".format(len(self.jobs) + 1)
        name = "{}.{}".format(self.settings.get("CustomName", "render"), self.format)
        self.jobs[job_id] = {"JobId": job_id, "timeline": self.timeline, "format": self.format, "codec": self.codec,
                             "settings": dict(self.settings), "audio_enabled": list(self.timeline.audio_enabled),
                             "TargetDir": self.settings.get("TargetDir", ""), "OutputFilename": name, "status": "Ready"}
        self.calls.append(("AddRenderJob", job_id))
        return job_id

    def StartRendering(self, *job_ids):
        ids = job_ids[0] if job_ids and isinstance(job_ids[0], list) else list(job_ids)
        for job_id in ids:
            job = self.jobs[job_id]
            job["path"] = os.path.join(job["TargetDir"], job["OutputFilename"])
            self.renderer(job)
            job["status"] = "Complete"
        self.calls.append(("StartRendering", ids))
        self.rendering = RENDER_LOOKS
        return True

    def IsRenderingInProgress(self):
        self.rendering = max(self.rendering - 1, 0)
        return self.rendering > 0

    def GetRenderJobStatus(self, job_id):
        job = self.jobs[job_id]
        return {"JobStatus": "Rendering" if self.rendering else job["status"],
                "CompletionPercentage": 0 if self.rendering else 100}

    def GetRenderJobList(self):
        return [{key: job[key] for key in ("JobId", "TargetDir", "OutputFilename")} for job in self.jobs.values()]

    def DeleteRenderJob(self, job_id):
        self.calls.append(("DeleteRenderJob", job_id))
        return self.jobs.pop(job_id, None) is not None


def install(timeline: Timeline) -> Project:
    """A fake `DaVinciResolveScript` whose Resolve has one project with `timeline` open."""
    project = Project(timeline)
    fusion = types.SimpleNamespace(UIManager=project.ui, RequestFile=lambda *args: project.requested,
                                   RequestDir=lambda *args: project.requested)
    resolve = types.SimpleNamespace(
        GetProjectManager=lambda: types.SimpleNamespace(GetCurrentProject=lambda: project), Fusion=lambda: fusion,
    )
    module = types.ModuleType("DaVinciResolveScript")
    module.scriptapp = lambda name: resolve if name == "Resolve" else None
    module.UIDispatcher = UIDispatcher
    sys.modules["DaVinciResolveScript"] = module
    return project
