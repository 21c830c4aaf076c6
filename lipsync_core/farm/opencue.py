"""The farm job as an OpenCue outline (opencue-pyoutline): per shot an analyze layer, a render layer whose frames
run in chunks and an assemble layer (a movie joined, a sequence signed), each layer waiting for the whole of the one before.

`lipsync farm job --engine opencue` writes JOB/lipsync.outline, a pyoutline script; `pycuerun JOB/lipsync.outline`
submits it. On a render node pycuerun runs one chunk of a layer (`pycuerun lipsync.outline -e FRAME-LAYER`), which
here runs the layer's `lipsync` command once, with the chunk's range as --frames A-B.
"""

from __future__ import annotations

import pprint
from pathlib import Path

from outline.layer import Layer

from .job import FRAMES, FarmShot

SCRIPT = "lipsync.outline"


class LipSyncCommand(Layer):
    """A `lipsync` command run once per chunk of the layer's frames (an analyze or assemble layer has one frame)."""

    def __init__(self, name, **args):
        super().__init__(name, **args)
        self.require_arg("command")

    def _execute(self, frames):
        chunk = f"{frames[0]}-{frames[-1]}"
        self.system([chunk if arg == FRAMES else arg for arg in self.get_arg("command")])


def add_layers(shots: list[dict]) -> list[LipSyncCommand]:
    """The layers of `shots` (`FarmShot`s as dicts), added to the outline being loaded, with their dependencies."""
    layers = []
    for shot in shots:
        name = shot["name"].replace(" ", "_")
        analyze = LipSyncCommand(f"{name}_analyze", command=shot["analyze"], range="1")
        render = LipSyncCommand(f"{name}_render", command=shot["render"], range=f"{shot['first']}-{shot['last']}",
                                chunk=shot["chunk"])
        assemble = LipSyncCommand(f"{name}_assemble", command=shot["assemble"], range="1")
        render.depend_all(analyze)
        assemble.depend_all(render)
        layers += [analyze, render, assemble]
    return layers


def write_outline(folder: Path, shots: list[FarmShot], chunk_size: int) -> Path:
    """JOB/lipsync.outline: the shots' layers, for `pycuerun`."""
    data = [{"name": s.name, "first": s.first, "last": s.last, "chunk": chunk_size, "analyze": s.analyze,
             "render": s.render, "assemble": s.assemble} for s in shots]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SCRIPT
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"# An OpenCue outline written by `lipsync farm job`; submit it with `pycuerun {SCRIPT}`.\n"
                   "from lipsync_core.farm.opencue import add_layers\n\n"
                   f"add_layers({pprint.pformat(data, width=120, sort_dicts=False)})\n")
    tmp.replace(path)
    return path
