"""`lipsync farm job|assemble`: write a farm job for a shot list; join a movie's chunks (the job's last task)."""

from __future__ import annotations

import argparse

from ..errors import LipSyncError
from ..ops.cli import add_command
from ..ops.farm import FARM_ASSEMBLE, FARM_JOB


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "farm", help="dub shot lists on a render farm (Open Job Description, OpenCue)",
        description="Write a job for your farm's own engine: `lipsync farm job SHOTS.csv -o JOB`, then submit JOB "
        "with the engine's command line. The job's tasks run `lipsync analyze`, `lipsync dub --frames A-B` and "
        "`lipsync farm assemble`.",
    )
    steps = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    add_command(steps, FARM_JOB).set_defaults(run=run_job)
    add_command(steps, FARM_ASSEMBLE).set_defaults(run=run_assemble)


def run_job(args: argparse.Namespace) -> int:
    from .job import farm_shots

    shots = farm_shots(args.sources, args)
    if args.engine == "opencue":
        try:
            from .opencue import write_outline
        except ImportError:
            raise LipSyncError("an OpenCue job needs opencue-pyoutline: pip install 'lipsync[farm]'") from None

        path = write_outline(args.output, shots, args.chunk_size)
        submit = f"submit it: pycuerun {path}"
    else:
        from .openjd import job_template, write_job

        path = write_job(args.output, job_template(f"LipSync {args.sources[0].stem}", shots, shots[0].analyze[0],
                                                   args.chunk_size, args.device))
        submit = f"run it here: openjd run {path}; submit it to Deadline Cloud: deadline bundle submit {args.output}"
    print(f"{path}: {len(shots)} shot(s), {sum(s.last - s.first + 1 for s in shots)} frames in chunks of {args.chunk_size}")
    print(submit)
    return 0


def run_assemble(args: argparse.Namespace) -> int:
    from .assemble import assemble

    output = assemble(args.plate, args.audio, args.chunks, args.output, frames=args.frames, shot=args.shot,
                      audio_offset=args.audio_offset, audio_peaks=args.audio_peaks, overwrite=args.overwrite,
                      colourspace=args.colourspace, ocio=args.ocio)
    print(f"wrote {output}")
    return 0
