"""The LipSync node for Nuke: a Group whose knobs are the generate operation's parameters.

    plate (input 0) --+--------------------------------------------+-- switch -- output
                      +-- plate_write: WORK/plate.####.exr          |
    mask (input 1) ------ roto_write: WORK/roto.####.exr            |
                          worker -> WORK/dub.####.exr --- result ---+

Render (the button) bakes the plate input (and the optional roto on the mask input) over the node's
frame range into the work folder as float EXR, then hands a job to the worker process
(lipsync_core/dub/worker.py), which writes the shot sidecar for what the knobs key per frame, a
`render.py` a TD can run again, and runs `lipsync dub`; a crash in the render cannot take Nuke down.
Progress and Cancel are Nuke's own (ProgressTask). The result comes back through the Read node
`result`, an EXR sequence carrying the blend mask as channel `lipsync.mask`, black outside the
rendered range; the switch then shows it instead of the plate.

Nothing but the standard library is imported here: Nuke's Python has no numpy, OpenCV, PyAV or
OpenEXR. The knobs are made from the schema in plugin.json (name, type, default, range, tooltip;
animatable ones keyable), and a knob left at its default and not keyed is not passed, so the shot's
own value applies. Knobs of the node beyond the schema are HOST_KNOBS. A keyed knob is sampled on
every frame of the range and stored in the sidecar as linear keys, which is exact at every frame
rendered. Text knobs are evaluated (TCL: `[file dirname [value root.name]]/dub.wav`).

Farm safety: the internal Write nodes are disabled except while Render bakes them, so a submitter
that renders every enabled Write (Deadline walks into Groups) never re-renders the plate and roto.
Proxy mode is off during the bake (the core needs full-resolution frames). When the plate, the audio
or a setting changes after a render, the node says its result is stale (`check`, run by Nuke's
updateUI callback that menu.py registers, and on every knob change of the node).

Colour: the plate is baked, and the result read back, in the `colorspace` knob's space (default: the
script's working space); the core takes float EXR as scene-linear.

Under `nuke -t` (no GUI) Render runs to the end before returning and raises on failure; in the GUI
the worker runs in a thread and reports through Nuke's progress bar, a message and the node's status.
"""

import hashlib
import json
import os
import threading
from pathlib import Path

import nuke

from lipsync_core.dub.worker import params, start_panel, submit
from lipsync_core.errors import LipSyncError

NODE_NAME = "LipSync"
OPERATION = "generate"
# The operation's pictures are the node's inputs and outputs, not knobs: the plate is input 0, the
# result (output) and its blend mask (the lipsync.mask channel) are what the node outputs.
PICTURES = ("plate", "output", "mask")
# Knobs of the node beyond the operation's parameters: where the worker's files go, the frame range
# to render (the schema leaves it to the host), the plate's colourspace, the button, the last render's
# report and (hidden) the fingerprint of what that render was made from.
HOST_KNOBS = ("work_dir", "first", "last", "colorspace", "render", "status", "baked")
WORK_DIR = "[file dirname [value root.name]]/lipsync/[value this.name]"
PLATE_FILE, ROTO_FILE, RESULT_FILE, SCRIPT = "plate.####.exr", "roto.####.exr", "dub.####.exr", "render.py"
WRITES = ("plate_write", "roto_write")
FILE_TYPES = ("audio", "model", "shot", "path")
TEXT_TYPES = FILE_TYPES + ("offset", "str")
STALE = "stale: the plate, the audio or a setting changed since this render; Render again"
STALE_COLOUR = 0xB03030FF  # the node's tile turns red while its result is stale


def node_params() -> list:
    """The operation's parameters that are knobs of the node (from plugin.json)."""
    return [p for p in params(OPERATION) if p.name not in PICTURES]


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
        for name, source in zip(WRITES, (plate, roto)):
            # Disabled but while Render bakes it: a farm submitter renders every enabled Write it finds.
            write = nuke.nodes.Write(name=name, file_type="exr", channels="rgba", datatype="32 bit float", disable=True)
            write.setInput(0, source)
        result = nuke.nodes.Read(name="result", on_error="black", before="black", after="black")
        switch = nuke.nodes.Switch(name="switch", which=0)
        switch.setInput(0, plate)
        switch.setInput(1, result)
        nuke.nodes.Output().setInput(0, switch)
    finally:
        group.end()

    group.addKnob(nuke.Tab_Knob("lipsync", "LipSync"))
    for param in node_params():
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
    colour = nuke.String_Knob("colorspace", "colorspace")
    colour.setValue(nuke.root()["workingSpaceLUT"].value())
    colour.setTooltip("the colourspace the plate is baked in and the result read back in: scene-linear "
                      "(default: the script's working space)")
    group.addKnob(colour)
    button = nuke.PyScript_Knob("render", "Render", "import lipsync_nuke; lipsync_nuke.render(nuke.thisNode())")
    button.setFlag(nuke.STARTLINE)
    group.addKnob(button)
    group.addKnob(nuke.Text_Knob("status", "", ""))
    baked = nuke.String_Knob("baked", "baked")
    baked.setFlag(nuke.INVISIBLE)
    group.addKnob(baked)
    group["knobChanged"].setValue("import lipsync_nuke; lipsync_nuke.check(nuke.thisNode())")


def knob_values(group, first: int, last: int) -> tuple:
    """(given values by parameter name, keyed parameters as [(frame, value)] over first..last).
    A knob at its default and not keyed is not given; text knobs are evaluated (TCL)."""
    given, keyed = {}, {}
    for param in node_params():
        knob = group[param.name]
        if param.animatable and knob.isAnimated():
            keyed[param.name] = [(frame, float(knob.getValueAt(frame))) for frame in range(first, last + 1)]
            continue
        value = knob.evaluate() if param.type in TEXT_TYPES else knob.value()
        if value != _unset(param):
            given[param.name] = value
    return given, keyed


def render(group):
    """The Render button. Returns the report lines when it ran to the end here (no GUI)."""
    try:
        job, work, fingerprint = _prepare(group)
    except LipSyncError as error:
        return _failed(group, str(error))
    if nuke.env["gui"]:
        threading.Thread(target=_render, args=(group, job, work, fingerprint), daemon=True).start()
        return None
    return _render(group, job, work, fingerprint)


def _prepare(group) -> tuple:
    """Bake the inputs; return the worker's job, the work folder and the fingerprint of the inputs."""
    work = Path(group["work_dir"].evaluate() or "")
    if not work.is_absolute():  # the default is beside the script: an unsaved script has no folder yet
        raise LipSyncError(f"the work folder {work} is not a full path: set it, or save the script first")
    first, last = int(group["first"].value()), int(group["last"].value())
    if last < first:
        raise LipSyncError(f"frame range {first}-{last} is empty")
    if group.input(0) is None:
        raise LipSyncError("connect a plate to input 0")
    given, keyed = knob_values(group, first, last)
    if "audio" not in given:
        raise LipSyncError("choose the dub audio file")
    roto = group.input(1) is not None
    if given.get("shot") and (keyed or roto):
        raise LipSyncError("a shot sidecar is set: key the mask in it (lipsync panel), not on the node, or clear 'shot'")
    fingerprint = inputs_fingerprint(group)

    work.mkdir(parents=True, exist_ok=True)
    # A render starts from what the inputs are now: last time's frames, sidecar and face track go.
    for prefix in ("plate.", "roto.", "dub."):
        for old in work.glob(prefix + "*"):
            old.unlink()
    _bake(group, work, first, last, WRITES if roto else WRITES[:1])

    values = dict(given, plate=str(work / PLATE_FILE), output=str(work / RESULT_FILE), resume=True, progress_json=True)
    shot = None
    if keyed or roto:
        shot = {"frames": [first, last], "mask": keyed,
                "painted": [{"path": ROTO_FILE, "frames": [first, last], "mode": "replace"}] if roto else []}
    job = {"operation": OPERATION, "values": values, "shot": shot, "script": str(work / SCRIPT),
           "comment": f"LipSync render of Nuke node {group.fullName()}, frames {first}-{last}"}
    return job, work, fingerprint


def _bake(group, work: Path, first: int, last: int, writes) -> None:
    """Render the internal Writes over first..last at full resolution; they are disabled again after,
    whatever happens, and proxy mode is restored."""
    proxy = nuke.root()["proxy"]
    was_proxy = proxy.value()
    proxy.setValue(False)
    try:
        for name in writes:
            write = group.node(name)
            write["file"].setValue((work / (PLATE_FILE if name == "plate_write" else ROTO_FILE)).as_posix())
            write["colorspace"].setValue(group["colorspace"].value())
            write["disable"].setValue(False)
            try:
                nuke.execute(write, first, last)
            except RuntimeError as error:  # Nuke raises on Cancel in its progress bar, and on a failed frame
                raise LipSyncError(f"baking the {name.split('_')[0]} stopped: {error}") from None
            finally:
                write["disable"].setValue(True)
    finally:
        proxy.setValue(was_proxy)


def inputs_fingerprint(group) -> str:
    """What a render is made of: the node's settings, the audio file as it is on disk, and every node
    upstream of the group's inputs with its knob values. A change to any of them changes this."""
    first, last = int(group["first"].value()), int(group["last"].value())
    given, keyed = knob_values(group, first, last)
    audio = given.get("audio", "")
    try:
        stat = os.stat(audio)
        audio_state = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        audio_state = None
    upstream, seen, pending = [], set(), [group.input(i) for i in range(group.inputs())]
    while pending:
        node = pending.pop()
        if node is None or node.fullName() in seen:
            continue
        seen.add(node.fullName())
        upstream.append([node.Class(), node.fullName(), node.writeKnobs(nuke.WRITE_NON_DEFAULT_ONLY | nuke.TO_VALUE)])
        pending += [node.input(i) for i in range(node.inputs())]
    state = [given, keyed, audio_state, first, last, group["colorspace"].value(), sorted(upstream)]
    return hashlib.sha1(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def check(group) -> bool:
    """Flag the node when its result is stale; True when it is. Nuke calls this on UI updates and on
    the node's knob changes."""
    baked = group["baked"].value()
    stale = bool(baked) and inputs_fingerprint(group) != baked
    status = group["status"].value()
    if stale and not status.startswith(STALE):
        group["status"].setValue(f"{STALE}\n{status}")
        group["tile_color"].setValue(STALE_COLOUR)
    elif not stale and status.startswith(STALE):
        group["status"].setValue(status[len(STALE) + 1:])
        group["tile_color"].setValue(0)
    return stale


def update_ui() -> None:
    """Nuke's updateUI callback (menu.py adds it for Groups): check LipSync nodes only."""
    node = nuke.thisNode()
    if "baked" in node.knobs():
        check(node)


def _render(group, job: dict, work: Path, fingerprint: str):
    task = nuke.ProgressTask(f"LipSync {group.name()}")

    def progress(stage: str, done: int, total: int) -> None:
        task.setMessage(f"{stage} {done}/{total}")
        task.setProgress(int(100 * done / max(total, 1)))

    try:
        lines = submit(job, work, progress, task.isCancelled)
    except LipSyncError as error:
        return _failed(group, str(error))
    finally:
        del task  # closes Nuke's progress bar
    _in_main_thread(_show_result, group, work, lines, fingerprint)
    return lines


def _show_result(group, work: Path, lines: list, fingerprint: str) -> None:
    first, last = int(group["first"].value()), int(group["last"].value())
    read = group.node("result")
    read["file"].setValue((work / RESULT_FILE).as_posix())
    read["colorspace"].setValue(group["colorspace"].value())
    for name, value in (("first", first), ("last", last), ("origfirst", first), ("origlast", last)):
        read[name].setValue(value)
    read["reload"].execute()
    group.node("switch")["which"].setValue(1)
    group["status"].setValue("\n".join(lines))
    group["baked"].setValue(fingerprint)
    group["tile_color"].setValue(0)


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


def open_panel() -> None:
    """Nodes > LipSync > Open panel: the LipSync panel as its own process (its Qt and the core never
    load into Nuke), on the selected LipSync node's last bake when there is one."""
    selected = [n for n in nuke.selectedNodes() if "baked" in n.knobs()]
    if not selected:
        start_panel(Path.home())
        return
    group = selected[0]
    work = Path(group["work_dir"].evaluate() or "")
    given, _ = knob_values(group, int(group["first"].value()), int(group["last"].value()))
    plate = work / PLATE_FILE
    if not work.is_absolute() or not work.is_dir():
        nuke.message(f"LipSync {group.name()}: render it once first: the panel opens the baked plate in {work}")
        return
    start_panel(work, str(plate), given.get("audio"))
