"""The personalize operation (`lipsync personalize`): adapt the model to one actor from their footage."""

from __future__ import annotations

from .schema import Operation, Param
from .shared import DEVICE, SEED

PERSONALIZE = Operation(
    name="personalize",
    command=("personalize",),
    help="adapt the model to one actor: writes an actor model for `lipsync dub --model`",
    description="Fine-tune the model's decoder on clips of one actor (their own audio), with the sync regularizer "
    "keeping it in sync with new speech (the bundled speech pool: SyncNet, and a mouth reader fitted on the "
    "actor's frames). The last ~20% of each clip is held out for early stopping and the measures in the "
    "actor file's card. Run again with the same arguments to resume.",
    inputs=(
        Param("clips", "clip", "video files of the actor talking", required=True, many=True, positional=True),
        Param("audio", "audio", "the dialogue of a clip, when it is not the clip's own audio track; give it once "
              "per clip, in order", many=True, metavar="FILE"),
        Param("base", "model", "base model (not set: the bundled model)"),
        Param("syncnet", "model", "SyncNet model file, when the base model file holds none"),
    ),
    outputs=(
        Param("output", "model", "actor model to write (.safetensors)", required=True, flags=("-o", "--output")),
    ),
    params=(
        Param("frames", "frames", "frame range of a clip in the plate's numbering; give it once per clip, in order",
              many=True),
        Param("steps", "int", "most fine-tuning steps (stops earlier when the held-out footage stops improving)",
              default=200, range=(1, None)),
        Param("rank", "rank", "rank of the conv weight updates; 0: only the small decoder tensors; 'full': the "
              "whole decoder (largest file)", default=8),
        Param("sync_regularizer", "bool", "fine-tune with the sync regularizer (without it, sync on new speech "
              "drifts)", default=True),
        Param("lr", "float", "Adam learning rate", default=3e-4, range=(0, None)),
        Param("batch", "int", "windows of 5 frames per step", default=2, range=(1, None)),
        DEVICE,
        SEED,
        Param("progress_json", "bool", 'progress as JSON lines on stdout: {"stage": ..., "done": ..., "total": ..., '
              '"loss": ...}', default=False, node=False),
    ),
)
