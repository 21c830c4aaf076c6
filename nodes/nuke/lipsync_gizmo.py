"""LipSync.gizmo, generated from the generate operation's schema (plugin.json): the node Nuke makes from
NUKE_PATH, so that scripts reference it by name instead of embedding a copy of its insides.

    python nodes/nuke/lipsync_gizmo.py      # after changing the schema (a test checks the shipped file)

Standard library only, and no Nuke: lipsync_nuke.py (the node's behaviour) imports the schema from here.
"""

import functools
import sys
from pathlib import Path

# Run as a script, this folder's parent's parent is the repository (lipsync_core); inside Nuke, init.py put it on the path.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[2]))

from lipsync_core.dub.worker import params  # noqa: E402
from lipsync_core.ops.farm import DEFAULT_CHUNK, ENGINES  # noqa: E402

NODE_NAME = "LipSync"
OPERATION = "generate"
# The operation's pictures are the node's inputs and outputs, not knobs: the plate is input 0, the
# result (output) and its blend mask (the lipsync.mask channel) are what the node outputs.
PICTURES = ("plate", "output", "mask")
WORK_DIR = "[file dirname [value root.name]]/lipsync/[value this.name]"


@functools.lru_cache(maxsize=None)  # read once per Nuke session: the stale check runs on every UI update
def node_params() -> tuple:
    """The operation's parameters that are knobs of the node (from plugin.json)."""
    return tuple(p for p in params(OPERATION) if p.name not in PICTURES)


def unset(param):
    """What a knob holds when its parameter is not given."""
    if param.default is not None:
        return param.default
    return {"int": 0, "float": 0.0}.get(param.type, "")


# Nuke's user-knob type numbers (addUserKnob {TYPE name ...}) by parameter type.
KNOB_TYPES = {"audio": 2, "model": 2, "shot": 2, "path": 2, "choice": 4, "bool": 6, "int": 3, "float": 7,
              "offset": 1, "str": 1}
GIZMO = Path(__file__).resolve().with_name(NODE_NAME + ".gizmo")


def _tcl(text) -> str:
    """A value as a .nk/.gizmo word: quoted, with what TCL would read specially escaped."""
    text = str(text)
    for special in ("\\", '"', "[", "]", "$", "{", "}"):
        text = text.replace(special, "\\" + special)
    return '"' + text.replace("\n", "\\n") + '"'


def _number(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _user_knob(param) -> list:
    """The addUserKnob line of one parameter and the line setting its value."""
    words = [str(KNOB_TYPES[param.type]), param.name, "l", _tcl(param.name.replace("_", " "))]
    if param.type == "choice":
        words += ["M", "{" + " ".join(param.choices) + "}"]
    help_text = param.help
    if param.type in ("int", "float"):
        if param.default is None:
            help_text += " (0 and not keyed: not set)"
        if param.range and None not in param.range:
            words += ["R", _number(param.range[0]), _number(param.range[1])]
        if not param.animatable:
            words.append("+NO_ANIMATION")
    words += ["t", _tcl(help_text)]
    value = unset(param)
    shown = _number(value) if param.type in ("int", "float", "bool") else value if param.type == "choice" else _tcl(value)
    return [" addUserKnob {" + " ".join(words) + "}", f" {param.name} {shown}"]


def gizmo_text() -> str:
    """The text of LipSync.gizmo. The internal Writes are disabled (a farm submitter renders every enabled
    Write); everything a render changes lives on the node's own knobs, and lipsync_nuke.restore (onCreate)
    points the insides at it when a script opens, since Nuke rebuilds a gizmo's insides from this file."""
    lines = [
        "version 15.0 v1",
        "Gizmo {",
        " inputs 2",
        " help " + _tcl("Re-generates the lips of the plate (input 0) to match the dub audio; the optional mask input "
                        "replaces the automatic mask. Render bakes the inputs and runs LipSync outside Nuke."),
        " onCreate " + _tcl("import lipsync_nuke; lipsync_nuke.restore(nuke.thisNode())"),
        " knobChanged " + _tcl("import lipsync_nuke; lipsync_nuke.check(nuke.thisNode())"),
        " addUserKnob {20 lipsync l LipSync}",
    ]
    for param in node_params():
        lines += _user_knob(param)
    lines += [
        " addUserKnob {2 work_dir l " + _tcl("work folder") + " t " +
        _tcl("where the plate, the roto, render.py and the result go (a fresh folder per node)") + "}",
        " work_dir " + _tcl(WORK_DIR),
        " addUserKnob {3 first l " + _tcl("first frame") + " +NO_ANIMATION t " +
        _tcl("first frame to render (the audio is anchored at the first; default: the script's)") + "}",
        " first {{root.first_frame}}",
        " addUserKnob {3 last l " + _tcl("last frame") + " -STARTLINE +NO_ANIMATION t " +
        _tcl("last frame to render (default: the script's)") + "}",
        " last {{root.last_frame}}",
        " addUserKnob {1 colorspace l colorspace t " + _tcl("the colourspace the plate is baked in, the core converts "
                                                           "from with the script's OpenColorIO config, and the result is read back "
                                                           "in (default: the script's working space)") + "}",
        " colorspace " + _tcl("[value root.workingSpaceLUT]"),
        " addUserKnob {22 render l Render T " + _tcl("import lipsync_nuke; lipsync_nuke.render(nuke.thisNode())") + " +STARTLINE}",
        " addUserKnob {4 farm_engine l " + _tcl("farm engine") + " M {" + " ".join(ENGINES) + "} t " +
        _tcl("the job format Submit to farm writes: Open Job Description (openjd run, Deadline Cloud) or OpenCue") + "}",
        " farm_engine " + ENGINES[0],
        " addUserKnob {3 chunk_size l " + _tcl("chunk size") + " -STARTLINE +NO_ANIMATION t " +
        _tcl("frames per farm render task") + "}",
        f" chunk_size {DEFAULT_CHUNK}",
        " addUserKnob {22 submit_farm l " + _tcl("Submit to farm") + " -STARTLINE T " +
        _tcl("import lipsync_nuke; lipsync_nuke.submit_farm(nuke.thisNode())") + "}",
        " addUserKnob {26 status l \"\" +STARTLINE T \"\"}",
        " addUserKnob {6 show_result l " + _tcl("show result") + " +INVISIBLE}",
        " addUserKnob {1 baked +INVISIBLE}",
        "}",
        " Input {", "  inputs 0", "  name mask", "  number 1", " }",
        " Write {", "  disable true", "  file_type exr", "  channels rgba", '  datatype "32 bit float"', "  name roto_write", " }",
        " Input {", "  inputs 0", "  name plate", " }",
        "set N_plate [stack 0]",
        " Write {", "  disable true", "  file_type exr", "  channels rgba", '  datatype "32 bit float"', "  name plate_write", " }",
        " Read {", "  inputs 0", "  on_error black", "  before black", "  after black", "  name result", " }",
        "push $N_plate",
        " Switch {", "  inputs 2", "  which 0", "  name switch", " }",
        " Output {", "  name Output1", " }",
        "end_group",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    GIZMO.write_text(gizmo_text(), encoding="utf-8")
    print(f"wrote {GIZMO}")
