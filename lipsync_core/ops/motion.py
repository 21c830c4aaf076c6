"""The motion operation (`lipsync motion`): the target mouth shape of every frame of a shot, as curves."""

from __future__ import annotations

from ..motion_controls import MOTION_LIMITS
from .schema import Operation, Param
from .shared import AUDIO_OFFSET, COLOURSPACE, DUB_AUDIO, FACE, MOTION_MODEL, OCIO, PLATE, SHOT

ARTICULATION = Param(
    "articulation", "float", "articulation gain for the whole shot: how far the mouth moves from rest (1: the actor's "
    "own; 0 holds it at rest; not set: the shot sidecar's motion gain, else 1); the sidecar's keyed motion "
    "corrections apply on top",
    range=MOTION_LIMITS["gain"],
)

MOTION = Operation(
    name="motion",
    command=("motion",),
    help="write the mouth motion a dub will have, as editable curves (.json or .csv)",
    description="Predict the mouth shape of every frame of PLATE dubbed with AUDIO (lip and jaw points of the face "
    "mesh in the aligned face crop, with the mouth opening and width curves), calibrated to the actor on the "
    "plate's own footage and speech, with the shot sidecar's motion controls (gain, keyed open/wide corrections) "
    "applied, and write it to OUT (.json or .csv).",
    inputs=(
        PLATE,
        DUB_AUDIO,
        SHOT,
        MOTION_MODEL,
    ),
    outputs=(Param("output", "path", "motion.json or motion.csv", required=True, flags=("-o", "--output")),),
    params=(
        AUDIO_OFFSET,
        FACE,
        ARTICULATION,
        COLOURSPACE,
        OCIO,
    ),
    node=False,
)
