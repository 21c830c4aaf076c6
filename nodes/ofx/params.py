"""The OFX node's parameters: the `generate` operation's inputs and parameters a host sets, and how a
host's value becomes the core's. The C plug-in describes them from `params.h`, which this module writes:

    python -m nodes.ofx.params          # after a schema change (tests/test_ofx_native.py fails while stale)

Host conventions: OFX numbers cannot be empty, so -1 stands for "not set" in a number whose schema
default is None (face: the shot's choice; feather: automatic); an empty string is "not set"; a choice
is its option's index.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lipsync_core.ops.generate import GENERATE
from lipsync_core.shot import Keyframes

HEADER = Path(__file__).with_name("params.h")
UNSET = -1
FILE_TYPES = ("audio", "model", "shot", "path")
# The schema's inputs and parameters a host sets as parameters (the clips are OFX clips).
PARAMS = tuple(p for p in GENERATE.inputs + GENERATE.params if p.node and p.type not in ("clip", "mask"))
OFX_TYPES = {"int": "kOfxParamTypeInteger", "float": "kOfxParamTypeDouble", "bool": "kOfxParamTypeBoolean",
             "choice": "kOfxParamTypeChoice"}


def host_default(param):
    if param.type == "choice":
        return param.choices.index(param.default)
    if param.default is None:
        return UNSET if param.type in ("int", "float") else ""
    return param.default


def core_value(param, value):
    """A host parameter's value as the core takes it."""
    if param.type == "choice":
        return param.choices[int(value)]
    if param.type in FILE_TYPES or param.type in ("str", "offset"):
        return value or None
    if param.default is None and value == UNSET:
        return None
    return value


def core_values(values: dict, keys: dict, first: int) -> tuple[dict, dict]:
    """The core's values from the plug-in's request: constants, and the animatable ones sampled at every
    frame of the shot (a constant, or one held key per frame)."""
    constants = {p.name: core_value(p, values[p.name]) for p in PARAMS if not p.animatable}
    animated = {}
    for param in (p for p in PARAMS if p.animatable):
        samples = [core_value(param, v) for v in keys[param.name]]
        animated[param.name] = samples[0] if all(v == samples[0] for v in samples) else \
            Keyframes([(first + i, v) for i, v in enumerate(samples)], "hold")
    return constants, animated


def _c(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid C string literal for this text


def header() -> str:
    """params.h: one row per parameter for the plug-in's describe action."""
    rows = []
    for p in PARAMS:
        low, high = p.range or (None, None)
        if p.type in ("int", "float") and p.default is None:
            low = UNSET  # "not set" must be a value the host lets through
        default = host_default(p)
        number = float(default) if isinstance(default, (int, float)) else 0.0
        text = default if isinstance(default, str) else ""
        choices = ", ".join(_c(c) for c in p.choices) + (", " if p.choices else "") + "NULL"
        rows.append(
            f"    {{{_c(p.name)}, {_c(p.name.replace('_', ' ').capitalize())}, {_c(p.help)}, "
            f"{OFX_TYPES.get(p.type, 'kOfxParamTypeString')}, {int(p.animatable)}, {int(p.type in FILE_TYPES)}, "
            f"{number!r}, {_c(text)}, {int(low is not None)}, {float(low or 0)!r}, {int(high is not None)}, "
            f"{float(high or 0)!r}, {{{choices}}}}},"
        )
    return (
        "/* Made by `python -m nodes.ofx.params` from the generate operation's schema: do not edit. */\n"
        "#define LIPSYNC_PARAM_COUNT " + str(len(PARAMS)) + "\n"
        "static const LipSyncParam LIPSYNC_PARAMS[LIPSYNC_PARAM_COUNT] = {\n" + "\n".join(rows) + "\n};\n"
    )


def main() -> int:
    HEADER.write_text(header(), encoding="utf-8")
    print(f"wrote {HEADER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
