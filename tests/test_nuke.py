"""The Nuke adapter (nodes/nuke) against a recording fake `nuke` (tests/fake_nuke.py), and a real
render through the script the node generates, on a real clip.

The fake's `nuke.execute` stands in for Nuke rendering the node's inputs: it writes frames of the
real clip (the plate) or a rectangle (the compositor's roto) as float EXR, numbered 1001.. as a
Nuke script would.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

import fake_nuke
from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.dub.outputs import MASK_LAYER
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_image
from lipsync_core.media.writers import open_writer
from lipsync_core.ops import operation
from lipsync_core.shot import Keyframes, Shot

NUKE_DIR = Path(__file__).resolve().parents[1] / "nodes" / "nuke"
FIRST, LAST = 1001, 1004
PLATE_START = 20  # Nuke frame 1001 is frame 20 of the clip
ROTO_BOX = (slice(120, 200), slice(140, 220))  # rows, columns: the middle of the 360x288 frame, on the face


@pytest.fixture
def nuke(monkeypatch):
    """A fresh fake Nuke with nodes/nuke on sys.path, as NUKE_PATH puts it; the adapter imported anew."""
    module = fake_nuke.install()
    module.plugin_dirs.append(str(NUKE_DIR))  # NUKE_PATH: Nuke finds LipSync.gizmo there
    monkeypatch.syspath_prepend(str(NUKE_DIR))
    yield module
    for name in ("nuke", "nukescripts", "lipsync_nuke", "lipsync_gizmo"):
        sys.modules.pop(name, None)


@pytest.fixture
def adapter(nuke):
    import lipsync_nuke

    return lipsync_nuke


def _knob_kind(param) -> str:
    return {"audio": "File_Knob", "model": "File_Knob", "shot": "File_Knob", "choice": "Enumeration_Knob",
            "int": "Int_Knob", "float": "Double_Knob", "offset": "String_Knob", "bool": "Boolean_Knob"}[param.type]


def test_init_and_menu_register_the_node_the_panel_and_the_stale_check(nuke):
    runpy.run_path(str(NUKE_DIR / "init.py"))
    assert str(NUKE_DIR.parents[1]) in sys.path
    runpy.run_path(str(NUKE_DIR / "menu.py"))
    assert ("addCommand", "Nodes/LipSync/LipSync", "lipsync_nuke.create()") in nuke.calls
    assert ("addCommand", "Nodes/LipSync/Open panel", "lipsync_nuke.open_panel()") in nuke.calls
    assert [call[2] for call in nuke.calls if call[0] == "updateUI"] == ["LipSync"]  # the gizmo's class


def test_the_panel_opens_as_its_own_process_in_a_clean_environment(nuke, adapter, tmp_path, monkeypatch):
    from lipsync_core.dub import worker

    started = []
    monkeypatch.setattr(worker.subprocess, "Popen", lambda argv, **kwargs: started.append((argv, kwargs)))
    monkeypatch.setenv("PYTHONHOME", "/opt/nuke/python")
    group = adapter.create()
    group["work_dir"].setValue(str(tmp_path))
    group["audio"].setValue(str(tmp_path / "dub.wav"))
    nuke.selected = [group]
    adapter.open_panel()
    (argv, kwargs), = started
    assert argv[:2] == [worker.python(), "-I"] and kwargs["cwd"] == str(tmp_path)
    assert argv[-2:] == [str(tmp_path / "plate.####.exr"), str(tmp_path / "dub.wav")]
    assert not any(name.startswith("PYTHON") for name in kwargs["env"])
    # The same command line, run for real, reaches the panel's own argument parser (no Qt needed for --help).
    monkeypatch.undo()
    argv[-2:] = ["--help"]
    shown = subprocess.run(argv, capture_output=True, text=True, env=kwargs["env"], cwd=kwargs["cwd"], timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: lipsync-panel"), shown.stderr


def test_the_nodes_knobs_are_the_dub_operations_parameters(nuke, adapter):
    op = operation("generate")
    group = adapter.create()
    knobs = group.knobs()
    node_params = [p for p in op.all() if p.node and p.name not in adapter.PICTURES]
    # Every parameter a host may set is a knob; the only other knobs are Nuke's own (HOST_KNOBS).
    added = {call[2] for call in nuke.calls if call[0] == "addKnob"}
    assert added - {"lipsync"} == {p.name for p in node_params} | set(adapter.HOST_KNOBS)
    # The pictures are the node's inputs and output: plate on input 0, the roto on the mask input.
    assert {p.name for p in op.all() if p.node} - {p.name for p in node_params} == {"plate", "output", "mask"}
    inside = {n.name(): n for n in group.children}
    assert inside["plate_write"].input(0) is inside["plate"] and inside["roto_write"].input(0) is inside["mask"]
    assert inside["switch"].input(0) is inside["plate"] and inside["switch"].input(1) is inside["result"]
    assert inside["mask"]["number"].value() == 1  # Nuke shows the second Input as the node's mask input
    for param in node_params:
        knob = knobs[param.name]
        assert type(knob).__name__ == _knob_kind(param), param.name
        assert knob.tooltip().startswith(param.help)
        if param.default is not None:
            assert knob.value() == param.default, param.name
        if param.type in ("int", "float"):
            assert (nuke.NO_ANIMATION not in knob.flags) == param.animatable, param.name
            if param.range and None not in param.range:
                assert knob.range == param.range
        if param.type == "choice":
            assert knob.values == list(param.choices)
    assert knobs["first"].value() == 1001 and knobs["last"].value() == 1100  # the script's range


def test_the_shipped_gizmo_is_generated_from_the_schema(nuke, adapter):
    import lipsync_gizmo

    assert lipsync_gizmo.GIZMO.read_text() == lipsync_gizmo.gizmo_text(), \
        "LipSync.gizmo is out of date: run python nodes/nuke/lipsync_gizmo.py"
    group = adapter.create()
    assert group.Class() == "LipSync"  # scripts reference the gizmo by name, not a copy of its insides


def test_a_render_needs_audio_and_a_full_work_folder(nuke, adapter, tmp_path):
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read())
    with pytest.raises(RuntimeError, match="work folder .* is not a full path"):
        adapter.render(group)
    group["work_dir"].setValue(str(tmp_path))
    with pytest.raises(RuntimeError, match="choose the dub audio file"):
        adapter.render(group)
    assert not any(call[0] == "execute" for call in nuke.calls)


def test_the_core_gets_the_ocio_config_nuke_uses_and_a_missing_one_stops_the_render_before_the_bake(
    nuke, adapter, tmp_path, monkeypatch
):
    monkeypatch.delenv("OCIO", raising=False)
    root = nuke.root()
    assert adapter.ocio_config().endswith(os.path.join("configs", "nuke-default", "config.ocio"))  # shipped with Nuke
    custom = tmp_path / "show" / "config.ocio"
    custom.parent.mkdir()
    custom.write_text("ocio_profile_version: 2\n")
    root["OCIO_config"].setValue("custom")
    root["customOCIOConfigPath"].setValue(str(custom))
    assert adapter.ocio_config() == str(custom)
    monkeypatch.setenv("OCIO", "/studio/ocio/config.ocio")  # Nuke then uses it whatever the Project Settings say
    assert adapter.ocio_config() == "/studio/ocio/config.ocio"

    monkeypatch.delenv("OCIO")
    root["OCIO_config"].setValue("aces_1.2")  # a config this Nuke does not have
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read())
    for name, value in (("work_dir", str(tmp_path / "work")), ("first", FIRST), ("last", LAST), ("audio", str(tmp_path / "dub.wav"))):
        group[name].setValue(value)
    with pytest.raises(RuntimeError, match="the script's OpenColorIO config 'aces_1.2' is not a file here .*set \\$OCIO"):
        adapter.render(group)
    assert not any(call[0] == "execute" for call in nuke.calls)


def _render_inputs(plate_path: Path):
    """What Nuke's render of the group's inputs writes: the clip's frames as linear float EXR
    (plate_write), or a rectangle in alpha (roto_write)."""
    with open_plate(plate_path, frames=(PLATE_START, PLATE_START + LAST - FIRST)) as source:
        frames = {FIRST + i: srgb_decode(to_display(f.image)).astype(np.float32) for i, f in enumerate(source)}
    height, width = next(iter(frames.values())).shape[:2]

    def renderer(write, first, last):
        with open_writer(write["file"].value(), fps=25, width=width, height=height, pixel_type="float") as out:
            for number in range(first, last + 1):
                if write.name() == "plate_write":
                    out.write(frames[number], number)
                else:
                    roto = np.zeros((height, width, 4), np.float32)
                    roto[ROTO_BOX] = 1.0
                    out.write(roto, number)

    return renderer


def test_render_writes_the_inputs_runs_the_worker_and_reads_back_the_exr_with_its_mask(
    nuke, adapter, plate, dub_audio, tiny_model, tmp_path
):
    nuke.renderer = _render_inputs(plate)
    work = tmp_path / "work"
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read(name="plate_read", file="/plates/a.####.exr"))
    group.setInput(1, nuke.nodes.Read(name="roto_read"))
    sound = tmp_path / "sound"
    sound.mkdir()
    dub = sound / "dub.wav"
    dub.write_bytes(dub_audio.read_bytes())
    nuke.root()["name"].setValue(str(sound / "reel1.nk"))
    audio = "[file dirname [value root.name]]/dub.wav"  # TCL, as compositors write paths
    for name, value in (("work_dir", str(work)), ("first", FIRST), ("last", LAST), ("audio", audio),
                        ("model", str(tiny_model)), ("device", "cpu"), ("batch", 2), ("jaw_extension", 0.3),
                        ("colorspace", "linear")):
        group[name].setValue(value)
    group["grow"].setValueAt(0.0, FIRST)
    group["grow"].setValueAt(6.0, LAST)
    writes = [group.node(name) for name in ("plate_write", "roto_write")]
    assert all(write["disable"].value() for write in writes), "a farm submitter would render the internal Writes"

    lines = adapter.render(group)

    # The Writes rendered at full resolution, in the node's colourspace, and are disabled again; proxy is back.
    full_res = {"proxy": False}
    assert [c for c in nuke.calls if c[0] == "execute"] == [("execute", "plate_write", FIRST, LAST, full_res),
                                                              ("execute", "roto_write", FIRST, LAST, full_res)]
    assert all(write["disable"].value() and write["colorspace"].value() == "linear" for write in writes)
    assert nuke.root()["proxy"].value() is True
    assert any(line.startswith(f"dubbed 4 of 4 frames rendered ({FIRST}-{LAST})") for line in lines), lines
    # The generated script is what ran: the knobs that were changed, and none left at their default.
    script = (work / "render.py").read_text()
    for expected in ("'--jaw-extension', '0.3'", "'--batch', '2'", "'--device', 'cpu'", "'--progress-json'", "'--resume'"):
        assert expected in script
    # The core reads the baked plate in the node's colourspace, with the config the script's colour management uses.
    shipped = os.path.join(os.path.dirname(nuke.EXE_PATH), "plugins", "OCIOConfigs", "configs", "nuke-default", "config.ocio")
    assert f"'--colourspace', 'linear', '--ocio', {shipped!r}" in script
    assert "--grow" not in script and "--face" not in script and "--feather" not in script
    assert repr(str(dub)) in script  # the TCL evaluated
    # The keyed knob and the roto went to the sidecar beside the written plate.
    shot = Shot.load(work / "plate.####.exr.lipsync.json")
    assert shot.frames == (FIRST, LAST)
    assert shot.mask["grow"] == Keyframes([(1001, 0.0), (1002, 2.0), (1003, 4.0), (1004, 6.0)], "linear")
    assert [(p.path, p.frames, p.mode) for p in shot.painted] == [("roto.####.exr", (FIRST, LAST), "replace")]

    # Progress went to Nuke's progress bar, up to the end.
    assert nuke.progress[0] == ("start", "LipSync LipSync1") and ("progress", 100) in nuke.progress

    # The result is read back inside the group, and shown.
    read = group.node("result")
    assert read["file"].value() == (work / "dub.####.exr").as_posix()
    assert (read["first"].value(), read["last"].value()) == (FIRST, LAST) and read["reload"].executed == 1
    assert (read["before"].value(), read["after"].value()) == ("black", "black")  # not held frames
    assert read["colorspace"].value() == "linear"
    assert group.node("switch")["which"].value() == 1
    assert "wrote" in group["status"].value()

    # The script saved and opened again: Nuke rebuilds the gizmo's insides from LipSync.gizmo, sets the
    # node's saved knobs and runs its onCreate, which points the result Read at the render again.
    reopened = adapter.create()
    for name in ("work_dir", "first", "last", "colorspace", "show_result"):
        reopened[name].setValue(group[name].value())
    nuke.this = reopened
    exec(reopened["onCreate"].value(), {"nuke": nuke})
    assert reopened.node("result")["file"].value() == (work / "dub.####.exr").as_posix()
    assert reopened.node("switch")["which"].value() == 1

    # Nothing changed since: not stale. A change upstream, to the audio file, or to a setting: stale, said on the node.
    assert adapter.check(group) is False
    plate_read = group.input(0)
    for change, undo in (
        (lambda: plate_read["file"].setValue("/plates/b.####.exr"), lambda: plate_read["file"].setValue("/plates/a.####.exr")),
        (lambda: group["grow"].setValueAt(9.0, LAST), lambda: group["grow"].setValueAt(6.0, LAST)),
        (lambda: nuke.root()["OCIO_config"].setValue("custom"), lambda: nuke.root()["OCIO_config"].setValue("nuke-default")),
        (lambda: os.utime(dub, ns=(0, 0)), None),  # last: a file's time cannot be put back
    ):
        change()
        assert adapter.check(group) is True
        assert group["status"].value().startswith("stale:") and group["tile_color"].value() == adapter.STALE_COLOUR
        if undo is None:
            break
        undo()
        assert adapter.check(group) is False and group["status"].value().startswith("dubbed")

    # The roto replaced the automatic mask: the blend mask lies inside it, and outside it every
    # pixel is the plate's own, to the bit.
    for number in range(FIRST, LAST + 1):
        path = work / f"dub.{number}.exr"
        source, result = read_image(work / f"plate.{number}.exr"), read_image(path)
        with OpenEXR.File(str(path)) as exr:
            mask = exr.channels()[MASK_LAYER].pixels.astype(np.float32)
        outside = np.ones(mask.shape, bool)
        outside[ROTO_BOX] = False
        assert mask.max() > 0.5 and not mask[outside].any(), number
        assert np.array_equal(result[outside], source[outside]), number
        assert not np.array_equal(result[ROTO_BOX], source[ROTO_BOX]), number


def test_cancel_in_the_gui_stops_the_worker_and_says_so(nuke, adapter, plate, dub_audio, tiny_model, tmp_path):
    nuke.env["gui"] = True
    nuke.cancel_after = 1  # the user presses Cancel after the first progress update
    nuke.renderer = _render_inputs(plate)
    work = tmp_path / "work"
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read())
    for name, value in (("work_dir", str(work)), ("first", FIRST), ("last", LAST), ("audio", str(dub_audio)),
                        ("model", str(tiny_model)), ("device", "cpu")):
        group[name].setValue(value)

    assert adapter.render(group) is None  # the GUI keeps going while the worker renders
    deadline = time.monotonic() + 300
    while not nuke.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    assert nuke.messages == ["LipSync LipSync1: cancelled"]
    assert group["status"].value() == "LipSync LipSync1: cancelled"
    assert group.node("switch")["which"].value() == 0  # still the plate
    assert not list(work.glob(".*partial*")), "a half-written frame was left"


def test_cancel_while_nuke_bakes_the_plate_is_caught_and_leaves_the_writes_disabled(nuke, adapter, tmp_path):
    nuke.cancel_execute = True  # Nuke's nuke.execute raises RuntimeError("Cancelled") on Cancel
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read())
    for name, value in (("work_dir", str(tmp_path)), ("first", FIRST), ("last", LAST), ("audio", str(tmp_path / "dub.wav"))):
        group[name].setValue(value)
    with pytest.raises(RuntimeError, match="LipSync LipSync1: baking the plate stopped: Cancelled"):
        adapter.render(group)
    assert group.node("plate_write")["disable"].value() is True and nuke.root()["proxy"].value() is True
    assert not (tmp_path / "lipsync_job.json").exists(), "the worker was started on a half-baked plate"


def test_submit_to_farm_bakes_and_writes_the_chunked_job_with_the_knobs_which_openjd_runs(
    nuke, adapter, plate, dub_audio, tiny_model, tmp_path
):
    nuke.renderer = _render_inputs(plate)
    work = tmp_path / "work"
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read(name="plate_read"))
    group.setInput(1, nuke.nodes.Read(name="roto_read"))
    for name, value in (("work_dir", str(work)), ("first", FIRST), ("last", LAST), ("audio", str(dub_audio)),
                        ("model", str(tiny_model)), ("mouth", "generator"), ("device", "cpu"), ("batch", 2),
                        ("articulation", 1.5), ("jaw_extension", 0.3), ("chunk_size", 2)):
        group[name].setValue(value)
    group["grow"].setValueAt(0.0, FIRST)
    group["grow"].setValueAt(6.0, LAST)

    lines = adapter.submit_farm(group)

    # Baked as for Render: at full resolution, the Writes disabled again.
    assert [c[:4] for c in nuke.calls if c[0] == "execute"] == [("execute", "plate_write", FIRST, LAST),
                                                                 ("execute", "roto_write", FIRST, LAST)]
    assert all(group.node(name)["disable"].value() for name in ("plate_write", "roto_write"))
    template = work / "farm_job" / "template.json"
    assert any(line.startswith(f"{template}: 1 shot(s), 4 frames in chunks of 2") for line in lines), lines
    assert any("deadline bundle submit" in line for line in lines) and "deadline bundle submit" in group["status"].value()
    # The knobs `farm job` takes are on the tasks' command lines; the ones it does not take are in the baked
    # plate's sidecar, which every task reads.
    job = json.loads(template.read_text())
    render = json.dumps(next(step for step in job["steps"] if step["name"].endswith("render")))
    for expected in (f'"--model", "{tiny_model}"', '"--mouth", "generator"', '"--batch", "2"',
                     '"--colourspace", "linear"'):  # the working space's role, by the name of the space it is
        assert expected in render, expected
    # OpenJD's job parameters, which the farm's submitter may change: the device and the chunk size.
    assert {p["name"]: p["default"] for p in job["parameterDefinitions"]}.items() >= {"Device": "cpu", "ChunkSize": 2}.items()
    shot = Shot.load(work / "plate.####.exr.lipsync.json")
    assert shot.frames == (FIRST, LAST) and shot.motion["gain"] == 1.5 and shot.mask["jaw_extension"] == 0.3
    assert shot.mask["grow"] == Keyframes([(1001, 0.0), (1002, 2.0), (1003, 4.0), (1004, 6.0)], "linear")
    assert [(p.path, p.mode) for p in shot.painted] == [("roto.####.exr", "replace")]
    # The result Read waits for the farm's frames.
    assert group.node("result")["file"].value() == (work / "dub.####.exr").as_posix()

    # The job as a farm runs it (OpenJD's own runner, task by task): the dub lands where the node reads it, the
    # roto's outside untouched to the bit.
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(NUKE_DIR.parents[1]), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([str(Path(sys.executable).with_name("openjd")), "run", str(template), "--output", "json"],
                         capture_output=True, text=True, env=env)
    report = json.loads(run.stdout)
    # The shot's analysis, two render chunks, and the sequence's signing (its content credentials sidecar).
    assert run.returncode == 0 and report["status"] == "success" and report["chunks_run"] == 1 + 2 + 1, report
    for number in range(FIRST, LAST + 1):
        source, result = read_image(work / f"plate.{number}.exr"), read_image(work / f"dub.{number}.exr")
        outside = np.ones(source.shape[:2], bool)
        outside[ROTO_BOX] = False
        assert np.array_equal(result[outside], source[outside]), number
        assert not np.array_equal(result[ROTO_BOX], source[ROTO_BOX]), number


def test_submit_to_farm_refuses_a_shot_sidecar_it_would_not_use(nuke, adapter, tmp_path):
    group = adapter.create()
    group.setInput(0, nuke.nodes.Read())
    for name, value in (("work_dir", str(tmp_path)), ("audio", str(tmp_path / "dub.wav")), ("shot", str(tmp_path / "a.json"))):
        group[name].setValue(value)
    with pytest.raises(RuntimeError, match="a shot sidecar is set: the farm job takes the node's own settings"):
        adapter.submit_farm(group)
    assert not any(call[0] == "execute" for call in nuke.calls)
