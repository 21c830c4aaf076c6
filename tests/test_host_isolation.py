"""Every host adapter runs in a bare interpreter, as inside Nuke and Resolve, whose own Pythons have
none of our packages: `python -I -S` (no site packages, no PYTHONPATH), with only the fake host module
and the adapter's folder on the path (as NUKE_PATH or Resolve's Scripts folder put it). Each does a
real render through the worker, which starts in the Python that has the core.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.writers import open_writer

TESTS = Path(__file__).resolve().parent
NODES = TESTS.parent / "nodes"
HEAVY = ("numpy", "cv2", "av", "OpenEXR", "torch", "PySide6", "PySide2", "soundfile", "librosa", "opentimelineio")
FIRST, LAST = 1001, 1004


def run_bare(code: str, adapter_dir: Path, cwd: Path) -> dict:
    """Run `code` in `python -I -S` with the fakes and the adapter's folder on the path; it sets `result`."""
    prelude = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(TESTS)!r}, {str(adapter_dir)!r}]\n"
        "assert sys.flags.no_site and sys.flags.isolated and not any('site-packages' in p for p in sys.path)\n"
    )
    epilogue = (
        "\nresult['heavy'] = sorted(m for m in sys.modules if m.split('.')[0] in %r)\n"
        "print('RESULT ' + json.dumps(result))\n" % (HEAVY,)
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + code + epilogue], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_the_nuke_node_renders_from_a_python_without_site_packages(plate, dub_audio, tiny_model, tmp_path):
    # What Nuke's render of the plate input writes, made here where numpy is; the fake render copies it.
    source = tmp_path / "source"
    with open_plate(plate, frames=(20, 20 + LAST - FIRST)) as clip:
        frames = [srgb_decode(to_display(f.image)).astype(np.float32) for f in clip]
    height, width = frames[0].shape[:2]
    with open_writer(source / "plate.####.exr", fps=25, width=width, height=height, pixel_type="float") as out:
        for number, frame in enumerate(frames, FIRST):
            out.write(frame, number)
    work = tmp_path / "work"
    code = f"""
import runpy, shutil
import fake_nuke
nuke = fake_nuke.install()
nuke.plugin_dirs.append({str(NODES / "nuke")!r})  # NUKE_PATH
runpy.run_path({str(NODES / "nuke" / "init.py")!r})
runpy.run_path({str(NODES / "nuke" / "menu.py")!r})
import lipsync_nuke
group = lipsync_nuke.create()
group.setInput(0, nuke.nodes.Read(name="plate_read"))
def renderer(write, first, last):
    for number in range(first, last + 1):
        shutil.copy({str(source)!r} + "/plate.%d.exr" % number, write["file"].value().replace("####", str(number)))
nuke.renderer = renderer
for name, value in (("work_dir", {str(work)!r}), ("first", {FIRST}), ("last", {LAST}), ("audio", {str(dub_audio)!r}),
                    ("model", {str(tiny_model)!r}), ("device", "cpu"), ("batch", 2)):
    group[name].setValue(value)
group["grow"].setValueAt(0.0, {FIRST})
group["grow"].setValueAt(4.0, {LAST})
result = {{"lines": lipsync_nuke.render(group), "switch": group.node("switch")["which"].value()}}
"""
    result = run_bare(code, NODES / "nuke", tmp_path)
    assert result["heavy"] == [], "the node imported packages Nuke's Python does not have"
    assert any(line.startswith(f"dubbed 4 of 4 frames rendered ({FIRST}-{LAST})") for line in result["lines"]), result
    assert result["switch"] == 1
    assert sorted(p.name for p in work.glob("dub.*.exr")) == [f"dub.{n}.exr" for n in range(FIRST, LAST + 1)]
    # The worker wrote the sidecar with the keyed knob, and ran in the work folder.
    sidecar = json.loads((work / "plate.####.exr.lipsync.json").read_text())
    assert "grow" in json.dumps(sidecar["mask"]) and (work / "lipsync_job.json").exists()


def test_the_resolve_script_asks_and_dubs_from_a_python_without_site_packages(plate, dub_audio, tiny_model, tmp_path):
    script = NODES / "resolve" / "lipsync_resolve.py"
    out = tmp_path / "dubs"
    code = f"""
import runpy
import fake_resolve
clip = fake_resolve.TimelineItem("shot 010", fake_resolve.MediaPoolItem({str(plate)!r}, 25), left=20, duration=4)
project = fake_resolve.install(fake_resolve.Timeline([clip], fps=25))
codes = []
def run(argv):
    sys.argv = [{str(script)!r}] + argv
    try:
        runpy.run_path({str(script)!r}, run_name="__main__")
    except SystemExit as end:
        codes.append(end.code)
project.ui.user = lambda window: window.On.Cancel.Clicked(None)
run([])  # from Resolve's Scripts menu: no arguments, a dialog; the user cancels
run([{str(dub_audio)!r}, "--model", {str(tiny_model)!r}, "--device", "cpu", "--batch", "2", "--output-dir", {str(out)!r}])
result = {{"codes": codes, "imported": project.pool.imported, "takes": clip.GetTakesCount()}}
"""
    result = run_bare(code, NODES / "resolve", tmp_path)
    assert result["heavy"] == [], "the script imported packages Resolve's Python does not have"
    assert result["codes"] == [0, 0]
    assert result["imported"] == [str(out / "plate_20-23_lipsync_v001.mov")] and result["takes"] == 2


def test_the_worker_starts_clean_whatever_python_settings_the_host_has(tmp_path, monkeypatch):
    # Nuke and Resolve set PYTHONHOME and PYTHONPATH for their own Python; a worker that inherited
    # them would not even start. It runs in the shot's folder: relative paths in a job are from there.
    from lipsync_core.dub.worker import WorkerError, submit

    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "nuke" / "python"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nuke" / "plugins"))
    shot = tmp_path / "shot"
    shot.mkdir()
    (shot / "plate.mov").write_bytes(b"not a movie")
    job = {"operation": "generate", "values": {"plate": "plate.mov", "audio": "dub.wav", "output": "out.mov"}}
    with pytest.raises(WorkerError, match=r"^plate.mov: cannot be read as video"):  # found in the shot's folder
        submit(job, shot)
