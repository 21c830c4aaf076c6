"""The LipSync node for Nuke: a Group whose knobs are the generate operation's parameters.

    plate (input 0) --+--------------------------------------------+-- switch -- output
                      +-- plate_write: WORK/plate.####.exr          |
    mask (input 1) ------ roto_write: WORK/roto.####.exr            |
                          render.py -> WORK/dub.####.exr -- result -+

Render (the button) writes the plate input (and the optional roto on the mask input) over the
node's frame range into the work folder as float EXR, writes the shot sidecar for what the knobs
key per frame, and runs `lipsync dub` in a worker process through a generated `render.py`, so a
crash in the render cannot take Nuke down. Progress and Cancel are Nuke's own (ProgressTask). The
result comes back through the Read node `result`, an EXR sequence carrying the blend mask as channel
`lipsync.mask`; the switch then shows it instead of the plate.

The node only translates knobs into the operation's parameters: the knobs are made from
`lipsync_core.ops` (name, type, default, range, tooltip; animatable ones keyable), and a knob left
at its default and not keyed is not passed, so the shot's own value applies. Knobs of Nuke's own
beyond the schema are HOST_KNOBS. A keyed knob is sampled on every frame of the range and stored in
the sidecar as linear keys, which is exact at every frame rendered.

Under `nuke -t` (no GUI) Render runs to the end before returning and raises on failure; in the GUI
it runs in a thread and reports through Nuke's progress bar, a message and the node's status line.
"""

from __future__ import annotations

import threading
from pathlib import Path

import nuke

from lipsync_core.dub.worker import cli_arguments, python, run, write_script
from lipsync_core.errors import LipSyncError

NODE_NAME = "LipSync"
OPERATION = "generate"
# The operation's pictures are the node's inputs and outputs, not knobs: the plate is input 0, the
# result (output) and its blend mask (the lipsync.mask channel) are what the node outputs.
PICTURES = ("plate", "output", "mask")
# Knobs of the node beyond the operation's parameters: where the worker's files go, the frame range
# to render (the schema leaves it to the host), the button and the last render's report.
HOST_KNOBS = ("work_dir", "first", "last", "render", "status")
WORK_DIR = "[file dirname [value root.name]]/lipsync/[value this.name]"
PLATE_FILE, ROTO_FILE, RESULT_FILE, SCRIPT = "plate.####.exr", "roto.####.exr", "dub.####.exr", "render.py"
FILE_TYPES = ("audio", "model", "shot", "path")


def generate():
    """The generate operation (imported when a node is made or rendered, not at Nuke's start-up)."""
    from lipsync_core.ops import operation

    return operation(OPERATION)


def node_params(op) -> list:
    """The operation's parameters that are knobs of the node."""
    return [p for p in op.all() if p.node and p.name not in PICTURES]


def _unset(param):
    """What a knob holds when its parameter is not given."""
    if param.default is not None:
        return param.default
    return {"int": 0, "float": 0.0}.get(param.type, "")


def make_knob(param):
    """The knob of one parameter: its kind by type, and the schema's default, range and help."""
    label = param.name.replace("_", " ")
    if param.type in FILE_TYPES:
        knob = nuke.File_Knob(param.name, label)
    elif param.type == "choice":
        knob = nuke.Enumeration_Knob(param.name, label, list(param.choices))
    elif param.type == "bool":
        knob = nuke.Boolean_Knob(param.name, label)
    elif param.type == "int":
        knob = nuke.Int_Knob(param.name, label)
    elif param.type == "float":
        knob = nuke.Double_Knob(param.name, label)
    elif param.type in ("offset", "str"):
        knob = nuke.String_Knob(param.name, label)
    else:
        raise ValueError(f"parameter {param.name!r}: no Nuke knob for type {param.type!r}")
    help_text = param.help
    if param.type in ("int", "float"):
        if param.default is None:
            help_text += " (0 and not keyed: not set)"
        knob.setDefaultValue([_unset(param)])  # so that Nuke shows the knob as changed only when it is
        if param.range and None not in param.range:
            knob.setRange(*param.range)
        if not param.animatable:
            knob.setFlag(nuke.NO_ANIMATION)
    knob.setValue(_unset(param))
    knob.setTooltip(help_text)
    return knob


def create():
    """A new LipSync node, connected like any node Nuke creates (the Nodes menu calls this)."""
    group = nuke.createNode("Group", inpanel=False)
    group.setName(NODE_NAME)
    build(group)
    return group


def build(group) -> None:
    """The inside of the group and its knobs."""
    group.begin()
    try:
        plate = nuke.nodes.Input(name="plate")
        roto = nuke.nodes.Input(name="mask")  # Nuke shows an input named 'mask' as the node's mask input
        for name, source in (("plate_write", plate), ("roto_write", roto)):
            write = nuke.nodes.Write(name=name, file_type="exr", channels="rgba", datatype="32 bit float")
            write.setInput(0, source)
        result = nuke.nodes.Read(name="result", on_error="black")
        switch = nuke.nodes.Switch(name="switch", which=0)
        switch.setInput(0, plate)
        switch.setInput(1, result)
        nuke.nodes.Output().setInput(0, switch)
    finally:
        group.end()

    group.addKnob(nuke.Tab_Knob("lipsync", "LipSync"))
    for param in node_params(generate()):
        group.addKnob(make_knob(param))
    work = nuke.File_Knob("work_dir", "work folder")
    work.setValue(WORK_DIR)
    work.setTooltip("where the plate, the roto, render.py and the result go (a fresh folder per node)")
    group.addKnob(work)
    for name, root_knob in (("first", "first_frame"), ("last", "last_frame")):
        knob = nuke.Int_Knob(name, f"{name} frame")
        knob.setValue(int(nuke.root()[root_knob].value()))
        knob.setFlag(nuke.NO_ANIMATION)
        knob.setTooltip(f"{name} frame to render (the audio is anchored at the first)")
        group.addKnob(knob)
    button = nuke.PyScript_Knob("render", "Render", "import lipsync_nuke; lipsync_nuke.render(nuke.thisNode())")
    button.setFlag(nuke.STARTLINE)
    group.addKnob(button)
    group.addKnob(nuke.Text_Knob("status", "", ""))


def knob_values(group, op, first: int, last: int) -> tuple[dict, dict]:
    """(given values by parameter name, keyed parameters as [(frame, value)] over first..last).
    A knob at its default and not keyed is not given."""
    given, keyed = {}, {}
    for param in node_params(op):
        knob = group[param.name]
        if param.animatable and knob.isAnimated():
            keyed[param.name] = [(frame, float(knob.getValueAt(frame))) for frame in range(first, last + 1)]
            continue
        value = knob.value()
        if value != _unset(param):
            given[param.name] = value
    return given, keyed


def render(group) -> list[str] | None:
    """The Render button. Returns the report lines when it ran to the end here (no GUI)."""
    try:
        argv, work = _prepare(group)
    except LipSyncError as error:
        return _failed(group, str(error))
    if nuke.env["gui"]:
        threading.Thread(target=_render, args=(group, argv, work), daemon=True).start()
        return None
    return _render(group, argv, work)


def _prepare(group) -> tuple[list[str], Path]:
    """Write the inputs and the sidecar, and the render script; return the worker's command line."""
    op = generate()
    work = Path(group["work_dir"].evaluate() or "")
    if not work.is_absolute():  # the default is beside the script: an unsaved script has no folder yet
        raise LipSyncError(f"the work folder {work} is not a full path: set it, or save the script first")
    first, last = int(group["first"].value()), int(group["last"].value())
    if last < first:
        raise LipSyncError(f"frame range {first}-{last} is empty")
    if group.input(0) is None:
        raise LipSyncError("connect a plate to input 0")
    given, keyed = knob_values(group, op, first, last)
    if "audio" not in given:
        raise LipSyncError("choose the dub audio file")
    roto = group.input(1) is not None
    if given.get("shot") and (keyed or roto):
        raise LipSyncError("a shot sidecar is set: key the mask in it (lipsync panel), not on the node, or clear 'shot'")

    work.mkdir(parents=True, exist_ok=True)
    # A render starts from what the inputs are now: last time's frames, sidecar and face track go.
    for prefix in ("plate.", "roto.", "dub."):
        for old in work.glob(prefix + "*"):
            old.unlink()
    writes = [("plate_write", PLATE_FILE)] + ([("roto_write", ROTO_FILE)] if roto else [])
    for name, pattern in writes:
        write = group.node(name)
        write["file"].setValue((work / pattern).as_posix())
        nuke.execute(write, first, last)
    if keyed or roto:
        _write_shot(work, first, last, keyed, roto)

    values = {**given, "plate": str(work / PLATE_FILE), "output": str(work / RESULT_FILE),
              "resume": True, "progress_json": True}
    script = write_script(work / SCRIPT, cli_arguments(op, values),
                          f"LipSync render of Nuke node {group.fullName()}, frames {first}-{last}")
    return [python(), str(script)], work


def _write_shot(work: Path, first: int, last: int, keyed: dict, roto: bool) -> None:
    """The sidecar beside the written plate: the keyed mask controls and the roto as painted mask."""
    from lipsync_core.shot import Keyframes, PaintedMask, Shot, sidecar_path

    shot = Shot(
        path=sidecar_path(work / PLATE_FILE), source=PLATE_FILE, frames=(first, last),
        mask={name: Keyframes(keys, "linear") for name, keys in keyed.items()},
        painted=[PaintedMask(ROTO_FILE, (first, last), "replace")] if roto else [],
    )
    shot.save()


def _render(group, argv: list[str], work: Path) -> list[str] | None:
    task = nuke.ProgressTask(f"LipSync {group.name()}")

    def progress(stage: str, done: int, total: int) -> None:
        task.setMessage(f"{stage} {done}/{total}")
        task.setProgress(int(100 * done / max(total, 1)))

    try:
        lines = run(argv, progress, task.isCancelled)
    except LipSyncError as error:
        return _failed(group, str(error))
    finally:
        del task  # closes Nuke's progress bar
    _in_main_thread(_show_result, group, work, lines)
    return lines


def _show_result(group, work: Path, lines: list[str]) -> None:
    first, last = int(group["first"].value()), int(group["last"].value())
    read = group.node("result")
    read["file"].setValue((work / RESULT_FILE).as_posix())
    for name, value in (("first", first), ("last", last), ("origfirst", first), ("origlast", last)):
        read[name].setValue(value)
    read["reload"].execute()
    group.node("switch")["which"].setValue(1)
    group["status"].setValue("\n".join(lines))


def _failed(group, message: str) -> None:
    """Show a failed render on the node and to the user; without a GUI, fail the script."""
    text = f"LipSync {group.name()}: {message}"
    if not nuke.env["gui"]:
        raise RuntimeError(text)
    _in_main_thread(_show_failure, group, text)


def _show_failure(group, text: str) -> None:
    group["status"].setValue(text)
    nuke.message(text)


def _in_main_thread(function, *args) -> None:
    """Nuke's knobs may only change on its main thread; a GUI render reports from a worker thread."""
    if nuke.env["gui"]:
        nuke.executeInMainThread(function, args)
    else:
        function(*args)


def __getattr__(name: str):
    """`lipsync_nuke.Panel`: the Qt panel (plugin/), imported only when Nuke opens its pane, so that
    importing this module (menu.py, `nuke -t`) never loads Qt."""
    if name == "Panel":
        from plugin.window import MainWindow

        return MainWindow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
