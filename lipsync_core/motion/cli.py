"""`lipsync motion PLATE AUDIO -o motion.json`: the mouth motion a dub will have, as curves an artist edits."""

from __future__ import annotations

import argparse
import time

from ..dub.cli import ProgressBars
from ..dub.timing import offset_seconds
from ..media.frames import open_plate
from ..media.ocio import plate_space
from ..ops.cli import add_command
from ..ops.motion import MOTION
from ..shot import Shot, validate
from .curves import CurvesError, write_curves
from .stage import shot_motion


def add_parser(subparsers) -> None:
    add_command(subparsers, MOTION).set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() not in (".json", ".csv"):
        raise CurvesError(f"{args.output}: motion curves are written as .json or .csv")
    if args.output.is_dir():
        raise CurvesError(f"{args.output}: is a folder; name the curves file, e.g. {args.output / 'motion.json'}")
    shot = Shot.for_plate(args.plate, args.shot)
    if args.articulation is not None:  # replaces the shot's gain for this run, unsaved
        shot.motion = {**shot.motion, "gain": args.articulation}
        validate(shot)
    with open_plate(args.plate, frames=shot.frames) as plate:
        fps = plate.info.fps
    bars = ProgressBars()
    started, notes = time.perf_counter(), []
    try:
        curves = shot_motion(args.plate, args.audio, shot=shot, face=args.face,
                             audio_offset_s=offset_seconds(args.audio_offset, fps), model=args.motion_model,
                             space=plate_space(args.colourspace, args.ocio),
                             progress=lambda done, total: bars("analyze", done, total), notes=notes)
    finally:
        bars.close()
    write_curves(args.output, curves)
    silent = int(curves.silent.sum())
    print(f"motion for frames {curves.frames[0]}-{curves.frames[-1]} ({len(curves)} frames, "
          f"{time.perf_counter() - started:.1f} s): actor style {curves.style}")
    print(f"mouth opening up to {curves.opening.max():.1f} px of a 256-px face crop; at rest on {silent} frames of silence")
    for note in notes:
        print(note)
    print(f"wrote {args.output}")
    return 0
