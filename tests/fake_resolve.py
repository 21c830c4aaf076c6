"""A recording stand-in for Resolve's scripting module `DaVinciResolveScript`: only what the LipSync
script calls, returning what Resolve's scripting README documents. `install(timeline)` puts it in
sys.modules; every call that changes the project is appended to `calls`.
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
    def __init__(self, name: str, media: MediaPoolItem | None, left: int, duration: int, flags=()):
        self.name, self.media, self.left, self.duration, self.flags = name, media, left, duration, list(flags)
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
    def __init__(self, items: list[TimelineItem], fps: float, current: int | None = 0):
        self.items, self.fps, self.current = items, fps, current

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


class Project:
    def __init__(self, timeline: Timeline):
        self.timeline, self.pool = timeline, MediaPool()

    def GetCurrentTimeline(self):
        return self.timeline

    def GetMediaPool(self):
        return self.pool


def install(timeline: Timeline) -> Project:
    """A fake `DaVinciResolveScript` whose Resolve has one project with `timeline` open."""
    project = Project(timeline)
    resolve = types.SimpleNamespace(
        GetProjectManager=lambda: types.SimpleNamespace(GetCurrentProject=lambda: project)
    )
    module = types.ModuleType("DaVinciResolveScript")
    module.scriptapp = lambda name: resolve if name == "Resolve" else None
    sys.modules["DaVinciResolveScript"] = module
    return project
