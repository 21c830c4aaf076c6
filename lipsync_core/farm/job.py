"""A farm job as the engines share it: per shot, the commands of its analyze, render-chunk and assemble tasks.

The engine modules (`openjd`, `opencue`) only lay these commands out in their own format. Every shot's range is
read when the job is written, so a wrong path fails here, on the TD's machine, not on the farm.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..dub.batch import FIELDS, PATHS, REQUIRED, _face, appearance_clips, read_shot_list
from ..dub.outputs import output_kind
from ..dub.pipeline import _planned_range
from ..errors import LipSyncError
from ..media.ocio import plate_space
from ..ops.cli import frame_range
from ..shot import Shot
from .assemble import MOVIES

FRAMES = "{frames}"  # where a render task's chunk (A-B) goes in its command


@dataclass
class FarmShot:
    name: str  # unique in the job: the row number and the plate's name
    first: int
    last: int
    analyze: list[str]
    render: list[str]  # holds FRAMES
    assemble: list[str]  # a movie: join the chunks; an image sequence (written by the render tasks): sign it


def farm_shots(sources: list[Path], args: argparse.Namespace) -> list[FarmShot]:
    """The shots of a shot list, or of one PLATE AUDIO OUTPUT, as farm commands with `args`' options."""
    if len(sources) == 1:
        rows, folder = read_shot_list(sources[0]), sources[0].parent
    elif len(sources) == 3:
        rows, folder = [dict(zip(("plate", "audio", "output"), map(str, sources)))], Path.cwd()
    else:
        raise LipSyncError("give a shot list (.csv or .json), or PLATE AUDIO OUTPUT for one shot")
    lipsync = str(args.lipsync) if args.lipsync else _this_lipsync()
    colour = _colour_options(args)
    return [_farm_shot(i, row, folder, args, lipsync, colour) for i, row in enumerate(rows, 1)]


def _colour_options(args: argparse.Namespace) -> list[str]:
    """--colourspace and --ocio for every task, checked here; the config as an absolute path, since $OCIO on the
    farm's workers may name another config, or none."""
    space = plate_space(args.colourspace, args.ocio)
    if space is None:
        return []
    config = space.config if space.config.startswith("ocio://") else str(Path(space.config).absolute())
    return ["--colourspace", space.name, "--ocio", config]


def _farm_shot(index: int, row: dict, folder: Path, args: argparse.Namespace, lipsync: str, colour: list[str]) -> FarmShot:
    unknown = sorted(set(row) - FIELDS)
    missing = [name for name in REQUIRED if name not in row]
    if unknown or missing:
        raise LipSyncError(f"shot {index}: " + (f"unknown field(s) {', '.join(unknown)}" if unknown else f"no {missing[0]} given"))
    # Absolute paths: the farm's workers start elsewhere.
    path = {name: (folder / str(row[name])).absolute() for name in PATHS if name in row}
    frames = None
    if "frames" in row:
        try:
            frames = frame_range(str(row["frames"]))
        except argparse.ArgumentTypeError as error:
            raise LipSyncError(f"shot {index}: {error}") from None
    if "audio" not in path:
        path["audio"] = Shot.for_plate(path["plate"], path.get("shot")).audio_path
        if path["audio"] is None:
            raise LipSyncError(f"shot {index}: {path['plate']}: no audio given, and its sidecar names none")
    kind = output_kind(path["output"])
    if kind not in (*MOVIES, "exr", "png"):
        raise LipSyncError(f"shot {index}: {path['output']}: a farm writes .mp4 or an image sequence (out.####.exr, "
                           "out.####.png); a .mov cannot be joined from chunks")
    (first, last), _ = _planned_range(path["plate"], path.get("shot"), frames)
    model = path.get("model", args.model and Path(args.model).absolute())
    face = _face(row["face"]) if "face" in row else args.face
    shot = ["--shot", str(path["shot"])] if "shot" in path else []
    offset = f"--audio-offset={row.get('audio_offset', args.audio_offset)}"
    movie = kind in MOVIES
    # A movie's chunks go to a lossless sequence beside it, joined by the assemble task.
    target = (path["output"].parent / f".{path['output'].stem}.chunks" / f"{path['output'].stem}.####.png" if movie
              else path["output"])
    render = [lipsync, "dub", str(path["plate"]), str(path["audio"]), "-o", str(target), "--frames", FRAMES, "--resume",
              offset, "--mouth", args.mouth, "--device", args.device, "--batch", str(args.batch), *shot,
              *(["--face", str(face)] if face is not None else []), *(["--model", str(model)] if model else []),
              *(["--motion-model", str(Path(args.motion_model).absolute())] if args.motion_model else []),
              *(["--actor", str(path["actor"])] if "actor" in path else []),
              *[option for clip in appearance_clips(row, folder) for option in ("--appearance", str(clip.absolute()))],
              *colour]
    assemble = [lipsync, "farm", "assemble", str(path["plate"]), str(path["audio"]), str(target), "-o",
                str(path["output"]), "--frames", f"{first}-{last}", offset, *(["--overwrite"] if movie else []), *shot,
                *colour]
    return FarmShot(f"{index} {path['plate'].name}", first, last,
                    [lipsync, "analyze", str(path["plate"]), "--no-preview", *shot, *colour], render, assemble)


def _this_lipsync() -> str:
    """The `lipsync` command beside this Python (a virtual environment's), else the one on PATH."""
    beside = Path(sys.executable).with_name("lipsync")
    found = str(beside) if beside.is_file() else shutil.which("lipsync")
    if found is None:
        raise LipSyncError("no `lipsync` command found to put in the job: give --lipsync PATH as the farm's workers see it")
    return found
