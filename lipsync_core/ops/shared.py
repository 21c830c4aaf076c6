"""Parameters several operations share, declared once."""

from __future__ import annotations

from .schema import Param

DEVICE = Param("device", "choice", "where the model runs", default="auto", choices=("auto", "cpu", "cuda"))
SEED = Param("seed", "int", "random seed (the same seed repeats a run)", default=0)
PLATE = Param("plate", "clip", "video file, image sequence pattern (plate.####.exr) or one frame of it",
              required=True, positional=True)
SHOT = Param("shot", "shot", "shot sidecar to use instead of the one next to the plate")
FACE_HELP = "the face to dub when there are several (0 = the largest)"
DUB_AUDIO = Param("audio", "audio", "the dub: any audio file (or a video's audio track)", required=True, positional=True)
AUDIO_OFFSET = Param(
    "audio_offset", "offset",
    "start the dub later (positive) or earlier (negative) than the shot's first frame: frames as 3f, "
    "seconds as 0.12s; write a negative one as --audio-offset=-3f",
    default="0", metavar="OFFSET",
)
FACE = Param("face", "int", FACE_HELP + " (not set: the shot's choice)", range=(0, None))
# A float plate's OpenColorIO colourspace. Hosts set these from their own colour management (Nuke: the node's
# colorspace knob and the script's config), not as knobs of their own: node=False.
COLOURSPACE = Param("colourspace", "str", "the OpenColorIO colourspace of a float (EXR) plate, converted to the config's "
                    "default display for face tracking and the mouth, and the mouth back (not set: scene-linear Rec.709, "
                    "sRGB-encoded); needs the optional extra 'ocio'", metavar="NAME", node=False)
# A string, not a path: a config built into OpenColorIO is a URI (ocio://default), which a path would mangle.
OCIO = Param("ocio", "str", "the OpenColorIO config that names --colourspace: a config file, or one built into "
             "OpenColorIO such as ocio://studio-config-latest (not set: $OCIO)", metavar="CONFIG", node=False)
MOTION_MODEL = Param("motion_model", "model", "motion model file (.safetensors; not set: the bundled one)")
