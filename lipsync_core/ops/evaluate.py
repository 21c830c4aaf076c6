"""The evaluate operation (`lipsync eval`): measure a model on real clips against baselines."""

from __future__ import annotations

from .schema import Operation, Param
from .shared import DEVICE, MOTION_MODEL

EVALUATE = Operation(
    name="evaluate",
    command=("eval",),
    help="measure a model on real clips (sync, image quality, identity) against baselines",
    description="Dub each clip with its own audio and compare with the real frames (PSNR, SSIM, LMD, sync with our "
    "SyncNet, mouth-opening/loudness correlation), optionally dub it with other speech (--cross-audio), with the "
    "real footage, the static mouth and the untouched plate as baselines. Writes report.md, report.json and "
    "contact sheets of mouths to -o, and prints the summary tables.",
    inputs=(
        Param("inputs", "path", "video files with their own speech (a .wav of the same stem is used when present), "
              "folders of them, or a manifest.csv like ../shared/data/manifest.csv",
              required=True, many=True, positional=True, metavar="CLIPS_OR_FOLDER_OR_MANIFEST"),
        Param("model", "model", "model or actor file (not set: the bundled model)"),
        Param("syncnet", "model", "SyncNet to measure with, when the model file holds none"),
        MOTION_MODEL,
        Param("cross_audio", "audio", "other speech: also dub every clip with it (from its first frame) and measure "
              "sync against it", metavar="SPEECH"),
        Param("cache", "path", "prepared-clip cache", default="cache/eval"),
    ),
    outputs=(Param("output", "path", "report folder", default="out/eval", flags=("-o", "--output")),),
    params=(
        Param("split", "str", "manifest splits to evaluate, comma-separated", default="dev"),
        DEVICE,
    ),
)
