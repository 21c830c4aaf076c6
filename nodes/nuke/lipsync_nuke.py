"""The LipSync node for Nuke: the gizmo LipSync.gizmo (made by lipsync_gizmo.py from the schema), whose
knobs are the generate operation's parameters, and what its knobs and button do.

    plate (input 0) --+--------------------------------------------+-- switch -- output
                      +-- plate_write: WORK/plate.####.exr          |
    mask (input 1) ------ roto_write: WORK/roto.####.exr            |
                          worker -> WORK/dub.####.exr --- result ---+

Render (the button) bakes the plate input (and the optional roto on the mask input) over the node's
frame range into the work folder as float EXR, then hands a job to the worker process
(lipsync_core/dub/worker.py), which writes the shot sidecar for what the knobs key per frame, a
`render.py` a TD can run again, and runs `lipsync dub`; a crash in the render cannot take Nuke down.
Submit to farm bakes the same way, then has the worker write the chunked farm job of the baked plate
(`lipsync farm job`, WORK/farm_job) with the node's settings, for the farm's engine to submit.
Progress and Cancel are Nuke's own (ProgressTask). The result comes back through the Read node
`result`, an EXR sequence carrying the blend mask as channel `lipsync.mask`, black outside the
rendered range; the switch then shows it instead of the plate.

Nothing but the standard library is imported here: Nuke's Python has no numpy, OpenCV, PyAV or
OpenEXR. The gizmo's knobs come from the schema in plugin.json (name, type, default, range, tooltip;
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
script's working space), and the core is told that space and the script's OpenColorIO config
(`lipsync dub --colourspace --ocio`): it converts the plate to the config's display for the face tracker
and the model, and only the new mouth back; every other pixel of the result is the baked plate's own.

Under `nuke -t` (no GUI) Render runs to the end before returning and raises on failure; in the GUI
the worker runs in a thread and reports through Nuke's progress bar, a message and the node's status.
"""

import hashlib
import json
import os
import threading
from pathlib import Path

import nuke

from lipsync_core.dub.worker import start_panel, submit
from lipsync_core.errors import LipSyncError
from lipsync_core.ops.generate import RENDER_OPTIONS
from lipsync_gizmo import NODE_NAME, OPERATION, PICTURES, node_params, unset  # noqa: F401 (PICTURES: the tests)

# Knobs of the node beyond the operation's parameters: where the worker's files go, the frame range
# to render (the schema leaves it to the host), the plate's colourspace, the Render button, the farm's
# engine, chunk size and Submit to farm button, the last render's report and (hidden) the fingerprint
# of what that render was made from.
HOST_KNOBS = ("work_dir", "first", "last", "colorspace", "render", "farm_engine", "chunk_size", "submit_farm", "status",
              "show_result", "baked")
PLATE_FILE, ROTO_FILE, RESULT_FILE, SCRIPT = "plate.####.exr", "roto.####.exr", "dub.####.exr", "render.py"
FARM_OPERATION, FARM_DIR = "farm_job", "farm_job"  # the worker's operation for Submit to farm, and the job's folder
WRITES = ("plate_write", "roto_write")
TEXT_TYPES = ("audio", "model", "shot", "path", "offset", "str")
STALE = "stale: the plate, the audio or a setting changed since this render; Render again"
STALE_COLOUR = 0xB03030FF  # the node's tile turns red while its result is stale


def create():
    """A new LipSync node (the gizmo), connected like any node Nuke creates (the Nodes menu calls this)."""
    return nuke.createNode(NODE_NAME)


def restore(group) -> None:
    """onCreate: Nuke rebuilds a gizmo's insides from LipSync.gizmo when a script opens; point the result
    Read at the last render again (its folder, range and colourspace are the node's own knobs)."""
    if group["show_result"].value():
        _point_result(group)


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
        if value != unset(param):
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


def submit_farm(group):
    """The Submit to farm button: bake the inputs as Render does, then have the worker write the chunked farm job
    of the baked plate (`lipsync farm job`, the engine and chunk size of the node's farm knobs) into WORK/farm_job;
    the farm's own command submits it (the report says which). The result Read shows the farm's frames as they
    are rendered (black until then). Returns the report lines."""
    try:
        job, work, fingerprint = _prepare(group, farm=True)
        lines = submit(job, work)  # writing a job takes seconds: no progress bar, no thread
    except LipSyncError as error:
        return _failed(group, str(error))
    _in_main_thread(_show_result, group, work, lines, fingerprint)
    return lines


def _prepare(group, farm: bool = False) -> tuple:
    """Bake the inputs; return the worker's job (a render here, or with `farm` a farm job), the work folder and the
    fingerprint of the inputs."""
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
    if farm and given.get("shot"):
        raise LipSyncError("a shot sidecar is set: the farm job takes the node's own settings; clear 'shot', or "
                           "write a farm job for that shot with `lipsync farm job`")
    fingerprint = inputs_fingerprint(group)
    config = ocio_config()  # a config that is not there stops the render before the bake, not after it

    work.mkdir(parents=True, exist_ok=True)
    # A render starts from what the inputs are now: last time's frames, sidecar and face track go.
    for prefix in ("plate.", "roto.", "dub."):
        for old in work.glob(prefix + "*"):
            old.unlink()
    _bake(group, work, first, last, WRITES if roto else WRITES[:1])

    colour = {"colourspace": group["colorspace"].evaluate(), "ocio": config}
    if farm:
        return _farm_job(group, given, keyed, roto, work, first, last, colour), work, fingerprint
    values = dict(given, plate=str(work / PLATE_FILE), output=str(work / RESULT_FILE), resume=True, progress_json=True,
                  **colour)
    shot = None
    if keyed or roto:
        shot = {"frames": [first, last], "mask": keyed,
                "painted": [{"path": ROTO_FILE, "frames": [first, last], "mode": "replace"}] if roto else []}
    job = {"operation": OPERATION, "values": values, "shot": shot, "script": str(work / SCRIPT),
           "comment": f"LipSync render of Nuke node {group.fullName()}, frames {first}-{last}"}
    return job, work, fingerprint


def _farm_job(group, given: dict, keyed: dict, roto: bool, work: Path, first: int, last: int, colour: dict) -> dict:
    """The worker's job that writes the farm job of the baked plate. `lipsync farm job` takes the render options
    (model, face, mouth, device, batch...) on its command line; the mask controls and the articulation, which it
    does not take, go into the baked plate's sidecar, constant or keyed, with the roto, where every task reads them."""
    options = {name: given[name] for name in RENDER_OPTIONS if name in given}
    mask = dict(keyed, **{p.name: given[p.name] for p in node_params() if p.animatable and p.name in given})
    motion = {"gain": given["articulation"]} if "articulation" in given else {}
    values = dict(options, sources=[str(work / PLATE_FILE), given["audio"], str(work / RESULT_FILE)],
                  output=str(work / FARM_DIR), engine=group["farm_engine"].value(),
                  chunk_size=int(group["chunk_size"].value()), **colour)
    shot = {"frames": [first, last], "mask": mask, "motion": motion,
            "painted": [{"path": ROTO_FILE, "frames": [first, last], "mode": "replace"}] if roto else []}
    return {"operation": FARM_OPERATION, "values": values, "shot": shot, "script": None,
            "comment": f"LipSync farm job of Nuke node {group.fullName()}, frames {first}-{last}"}


def ocio_config() -> str:
    """The OpenColorIO config file the script's colour management uses: $OCIO when set (Nuke then uses it whatever
    the Project Settings say), else the custom config of the Project Settings, else the named config that ships
    with Nuke (plugins/OCIOConfigs/configs/NAME/config.ocio beside the executable)."""
    if os.environ.get("OCIO"):
        return os.environ["OCIO"]
    root = nuke.root()
    name = root["OCIO_config"].value()
    if name == "custom":
        path = root["customOCIOConfigPath"].evaluate()
    else:
        path = os.path.join(os.path.dirname(nuke.EXE_PATH), "plugins", "OCIOConfigs", "configs", name, "config.ocio")
    if not os.path.isfile(path):
        raise LipSyncError(f"the script's OpenColorIO config {name!r} is not a file here ({path}): choose a custom "
                           "config in the Project Settings, or set $OCIO")
    return path


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
            write["colorspace"].setValue(group["colorspace"].evaluate())
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
    """What a render is made of: the node's settings, the audio file as it is on disk, the script's OpenColorIO
    config and every node upstream of the group's inputs with its knob values. A change to any of them changes this."""
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
    root = nuke.root()
    # The colour management the core converts with: the script's OpenColorIO config, as ocio_config finds it.
    config = [os.environ.get("OCIO"), root["OCIO_config"].value(), root["customOCIOConfigPath"].evaluate()]
    state = [given, keyed, audio_state, first, last, group["colorspace"].evaluate(), config, sorted(upstream)]
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
    """Nuke's updateUI callback, which menu.py adds for LipSync nodes."""
    check(nuke.thisNode())


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


def _point_result(group) -> None:
    """The result Read on the rendered frames, black outside them, in the node's colourspace; shown."""
    first, last = int(group["first"].value()), int(group["last"].value())
    read = group.node("result")
    read["file"].setValue((Path(group["work_dir"].evaluate()) / RESULT_FILE).as_posix())
    read["colorspace"].setValue(group["colorspace"].evaluate())
    for name, value in (("first", first), ("last", last), ("origfirst", first), ("origlast", last)):
        read[name].setValue(value)
    read["reload"].execute()
    group.node("switch")["which"].setValue(1)


def _show_result(group, work: Path, lines: list, fingerprint: str) -> None:
    group["show_result"].setValue(True)
    _point_result(group)
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
    selected = [n for n in nuke.selectedNodes() if n.Class() == NODE_NAME]
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

