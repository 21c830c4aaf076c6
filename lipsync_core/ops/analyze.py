"""The analyze operation (`lipsync analyze`): track a shot's faces once, cache the track, draw a preview."""

from __future__ import annotations

from .schema import Operation, Param
from .shared import COLOURSPACE, FACE_HELP, OCIO, PLATE, SHOT

ANALYZE = Operation(
    name="analyze",
    command=("analyze",),
    help="track the faces of a shot, cache the track and draw a preview",
    description="Track every face in PLATE (478 landmarks per face and frame, smoothed), cache the track beside "
    "the shot's sidecar (PLATE.lipsync.track.npz), write a preview video (landmarks, face ids, the mask outline) "
    "and print what was found: frames with and without a face, faces seen, head pose range. --face and --frames "
    "are stored in the shot's sidecar (PLATE.lipsync.json) for later renders.",
    inputs=(PLATE, SHOT),
    outputs=(
        Param("output", "path", "where to write the track (.npz; not set: beside the sidecar)", flags=("-o", "--output")),
    ),
    params=(
        Param("face", "int", FACE_HELP, range=(0, None)),
        Param("frames", "frames", "analyze frames A-B of the plate's own numbering (not set: the shot's range)"),
        Param("preview", "bool", "write the preview video", default=True),
        Param("force", "bool", "track again even when a cached track matches", default=False),
        COLOURSPACE,
        OCIO,
    ),
)
