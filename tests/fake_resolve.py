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
"""

from __future__ import annotations

import sys
import types


class MediaPoolItem:
    def __init__(self, path: str, fps: float):
        self.properties = {"File Path": path, "FPS": f"{fps:g}"}

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

    def AddTake(self, media, startFrame=0, endFrame=0):
        self.calls.append(("AddTake", media))
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
    def __init__(self, items: list[TimelineItem], fps: float, current: int | None = 0, start: int = 90000):
        self.items, self.fps, self.current, self.start = items, fps, current, start

    def GetStartFrame(self):
        return self.start

    def GetCurrentVideoItem(self):
        return None if self.current is None else self.items[self.current]

    def GetTrackCount(self, kind: str):
        return 1 if kind == "video" else 0

    def GetItemListInTrack(self, kind: str, index: int):
        return list(self.items) if (kind, index) == ("video", 1) else []

    def GetSetting(self, name: str):
        return {"timelineFrameRate": f"{self.fps:g}"}[name]


class MediaPool:
    def __init__(self):
        self.imported: list[str] = []

    def ImportMedia(self, paths):
        self.imported += paths
        return [MediaPoolItem(path, 0) for path in paths]


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
        self.timeline, self.pool = timeline, MediaPool()
        self.ui = UIManager()
        self.requested = None  # what fusion.RequestFile / RequestDir return: the user's choice in Resolve's browser

    def GetCurrentTimeline(self):
        return self.timeline

    def GetMediaPool(self):
        return self.pool


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
