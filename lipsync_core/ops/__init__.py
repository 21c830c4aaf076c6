"""The node operations and their one parameter schema each.

    from lipsync_core.ops import OPERATIONS, NODES, operation
    op = operation("generate")                # an Operation: name, command, inputs, outputs, params
    op.param("audio_offset").default          # '0'
    [p.name for p in op.params if p.animatable]   # the per-frame mask controls

`OPERATIONS` holds every operation the command line has (the training steps included); `NODES` the
ones offered to hosts (analyze, generate, personalize, train, evaluate). The CLI arguments are made
from them by `ops.cli.add_command`, plugin.json by `ops.plugin_json`.
"""

from __future__ import annotations

from .analyze import ANALYZE
from .evaluate import EVALUATE
from .farm import FARM_ASSEMBLE, FARM_JOB
from .generate import GENERATE
from .motion import MOTION
from .personalize import PERSONALIZE
from .schema import TYPES, Operation, Param
from .train import CARD, PACKAGE, PREPARE, MOTION_CARD, MOTION_ENSEMBLE, SYNCNET, TRAIN, TRAIN_MOTION

OPERATIONS = {op.name: op for op in (ANALYZE, GENERATE, MOTION, PERSONALIZE, TRAIN, EVALUATE, PREPARE, SYNCNET, TRAIN_MOTION, MOTION_ENSEMBLE, MOTION_CARD, PACKAGE, CARD,
                                          FARM_JOB, FARM_ASSEMBLE)}
NODES = {name: op for name, op in OPERATIONS.items() if op.node}


def operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise KeyError(f"no operation {name!r} (known: {', '.join(OPERATIONS)})") from None


__all__ = ["NODES", "OPERATIONS", "TYPES", "Operation", "Param", "operation"]
