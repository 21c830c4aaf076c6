"""The generate operation (`lipsync dub`): a plate and dub audio in, the lip-synced plate and its mask out."""

from __future__ import annotations

from dataclasses import fields

from ..mask_controls import MASK_LIMITS, MaskOverrides
from .schema import Operation, Param
from .motion import ARTICULATION
from .shared import AUDIO_OFFSET, COLOURSPACE, DEVICE, DUB_AUDIO, FACE, MOTION_MODEL, OCIO, PLATE, SHOT

DEFAULT_BATCH = 8
MOUTHS = ("auto", "footage", "rendered", "generator")
PEAK_HANDLING = ("normalise", "clip")  # a dub above full scale (media.audio.fit_full_scale); the first is the default

# The compositor's mask controls: per frame, keyed in the panel or a host, stored in the shot sidecar.
MASK_HELP = {
    "grow": "grow the mask by this many plate pixels (negative shrinks)",
    "feather": "soft edge of the mask in plate pixels (automatic: about 6% of the face height)",
    "offset_y": "move the mask down by this many plate pixels (negative: up)",
    "jaw_extension": "how far below the chin the mask reaches, in nose-to-chin distances",
    "mouth_margin": "sideways widening of the mask below the nose, in face widths",
}
MASK_CONTROLS = tuple(
    Param(f.name, "float", MASK_HELP[f.name], default=f.default, range=MASK_LIMITS[f.name], animatable=True)
    for f in fields(MaskOverrides)
)

GENERATE = Operation(
    name="generate",
    command=("dub",),
    help="re-generate the lips of a plate to match new dialogue",
    description="Dub PLATE (video file or image sequence: plate.####.exr) with AUDIO and write the result to OUT, "
    "chosen by its name: .mp4 (H.264 + the dub), .mov (ProRes 4444, mask as alpha, + the dub), out.####.exr (mask "
    "as layer lipsync.mask, source headers kept) or out.####.png. Frames without a usable face, and frames "
    "bypassed in the shot, pass through untouched. A sidecar PLATE.lipsync.json (from `lipsync analyze` or the "
    "panel) is used when present; mask options given here replace its mask controls for this render.",
    inputs=(
        PLATE,
        DUB_AUDIO,
        SHOT,
        Param("model", "model", "StyleLipSync model (.safetensors): for --mouth rendered the renderer, for --mouth "
              "generator the generator or an actor file (not set: the bundled one)"),
        MOTION_MODEL,
        Param("motion_curves", "path", "the mouth motion to use instead of predicting it: a curves file from "
              "`lipsync motion` (.json or .csv), perhaps edited, for the same shot and dub (--mouth footage)", node=False),
        Param("appearance", "clip", "more footage of the shot's actor (a video or image sequence) to take mouths "
              "from where the shot never opens as wide or shows no teeth; once per clip, besides the sidecar's "
              "appearance list. A clip of anyone else is refused (needs the optional extra 'identity'; --mouth footage)", many=True, node=False, metavar="CLIP"),
        Param("actor", "model", "the actor file `lipsync personalize` wrote for this shot's actor: the clips it was "
              "personalized on lend their mouths as --appearance clips do (one moved or changed since is left out, "
              "with a note); with --mouth generator it is the model that draws", node=False),
    ),
    outputs=(
        Param("output", "clip", "out.mp4, out.mov, out.####.exr or out.####.png", required=True, flags=("-o", "--output")),
        Param("mask", "mask", "the blend mask of each frame (zero where the frame passed through)", cli=False),
    ),
    params=(
        Param(
            "frames", "frames",
            "render only frames A-B of the plate's own numbering (not set: the shot's range). The audio stays "
            "anchored at the shot's first frame and the face is tracked over the whole shot, so chunks rendered "
            "separately match a full render. The shot is the sidecar's range, else the whole plate: to dub part "
            "of a long plate, set the shot's range once with `lipsync analyze PLATE --frames A-B`",
            node=False,
        ),
        AUDIO_OFFSET,
        FACE,
        Param("mouth", "choice", "how the new mouth is made: 'footage' moves the actor's own mouth from the shot's "
              "frames to the shape the dub's motion asks for (real texture at the plate's resolution); 'rendered' also "
              "renders over the moved frames with the StyleLipSync renderer, which repaints what it distrusts at its "
              "crop's resolution and keeps the finer texture (about half as fast); 'generator' draws the mouth with the "
              "StyleLipSync generator from the audio alone (soft); 'auto': 'footage', or what the model given makes (a "
              "renderer: 'rendered'; a generator or an actor model from `lipsync personalize`: 'generator')", default="auto", choices=MOUTHS),
        ARTICULATION,
        COLOURSPACE,
        OCIO,
        Param("audio_peaks", "choice", "a dub whose samples go above full scale (a float file): 'normalise' scales "
              "it down to fit, 'clip' cuts the peaks off; either way the render says so", default=PEAK_HANDLING[0],
              choices=PEAK_HANDLING, node=False),
        Param("watermark", "bool", "hide an invisible watermark (the tool and the model) in the dubbed region; off "
              "for deliveries marked by other means: the signed content credentials and header facts stay",
              default=True, node=False),
        DEVICE,
        Param("batch", "int", "frames generated together; chunks of one shot must use the same value",
              default=DEFAULT_BATCH, range=(1, None)),
        *MASK_CONTROLS,
        Param("resume", "bool", "continue an interrupted image-sequence render: keep the whole frames already written "
              "(refused when they were rendered with other settings) and render the rest", default=False, node=False),
        Param("overwrite", "bool", "replace an existing output (for a sequence: render the range's existing frames "
              "again); without it an existing output is an error", default=False, node=False),
        Param("progress_json", "bool", 'report progress as JSON lines on stdout ({"stage": "render", "done": 3, '
              '"total": 75}) instead of bars', default=False, node=False),
    ),
)

# The dub options `batch`, `dub-timeline` and `farm job` take, as the defaults for every shot they render.
RENDER_OPTIONS = ("audio_offset", "face", "model", "motion_model", "mouth", "device", "batch", "colourspace", "ocio")
