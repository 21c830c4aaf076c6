"""The farm steps (`lipsync farm job`, `lipsync farm assemble`): a shot list written as a render-farm job, and
the step of that job that joins a movie's chunks. Command-line steps only: a host's farm button runs `farm job`."""

from __future__ import annotations

from .generate import GENERATE, RENDER_OPTIONS
from .schema import Operation, Param
from .shared import AUDIO_OFFSET, COLOURSPACE, DUB_AUDIO, OCIO, PLATE, SHOT

ENGINES = ("openjd", "opencue")
DEFAULT_CHUNK = 25

FARM_JOB = Operation(
    name="farm_job",
    command=("farm", "job"),
    help="write a render-farm job (Open Job Description or OpenCue) for a shot list or one shot",
    description="Write a job that dubs SHOTS.csv (or .json, as `lipsync batch` reads it) or one shot, PLATE AUDIO "
    "OUTPUT, on a farm: per shot an analyze task, then one render task per chunk of --chunk-size frames, then an "
    "assemble task that joins an .mp4's chunks and muxes the dub, or signs an image sequence (its C2PA sidecar). "
    "The result is what a single `lipsync dub` writes. openjd: JOB/template.yaml (run it with `openjd run`, submit it with `deadline bundle "
    "submit JOB`); opencue: JOB/lipsync.outline (submit it with `pycuerun JOB/lipsync.outline`).",
    inputs=(
        Param("sources", "path", "a shot list (.csv or .json), or PLATE AUDIO OUTPUT for one shot", required=True,
              many=True, positional=True),
    ),
    outputs=(
        Param("output", "path", "the job folder to write", required=True, flags=("-o", "--output")),
    ),
    params=(
        Param("engine", "choice", "the farm's job format", default=ENGINES[0], choices=ENGINES),
        Param("chunk_size", "int", "frames per render task", default=DEFAULT_CHUNK, range=(1, None)),
        Param("lipsync", "path", "the `lipsync` command as the farm's workers find it (default: this one)"),
        *(GENERATE.param(name) for name in RENDER_OPTIONS),
    ),
    node=False,
)

FARM_ASSEMBLE = Operation(
    name="farm_assemble",
    command=("farm", "assemble"),
    help="join the chunks of a farm render into one movie with the dub muxed, or sign a rendered image sequence "
    "(a farm job's last task)",
    description="Write OUTPUT (.mp4) from CHUNKS, the image sequence a farm job's render tasks wrote for PLATE and "
    "AUDIO, exactly as `lipsync dub PLATE AUDIO -o OUTPUT` writes it whole: same frames, same audio, same timing. "
    "Give the same --frames, --shot and --audio-offset as the render tasks had. For an image sequence OUTPUT (the "
    "render tasks wrote it: give it as CHUNKS too), write its signed content credentials, NAME.ext.c2pa beside it, once "
    "every frame of --frames is there.",
    inputs=(
        PLATE,
        DUB_AUDIO,
        Param("chunks", "clip", "the rendered frames: an image sequence (.####.png; for a sequence OUTPUT, OUTPUT)",
              required=True, positional=True),
        SHOT,
    ),
    outputs=(
        Param("output", "clip", "the movie to write (.mp4), or the image sequence to sign", required=True,
              flags=("-o", "--output")),
    ),
    params=(
        GENERATE.param("frames"),
        AUDIO_OFFSET,
        GENERATE.param("audio_peaks"),
        GENERATE.param("overwrite"),
        COLOURSPACE,
        OCIO,
    ),
    node=False,
)
