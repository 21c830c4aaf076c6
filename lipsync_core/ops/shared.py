"""Parameters several operations share, declared once."""

from __future__ import annotations

from .schema import Param

DEVICE = Param("device", "choice", "where the model runs", default="auto", choices=("auto", "cpu", "cuda"))
SEED = Param("seed", "int", "random seed (the same seed repeats a run)", default=0)
PLATE = Param("plate", "clip", "video file, image sequence pattern (plate.####.exr) or one frame of it",
              required=True, positional=True)
SHOT = Param("shot", "shot", "shot sidecar to use instead of the one next to the plate")
FACE_HELP = "the face to dub when there are several (0 = the largest)"
