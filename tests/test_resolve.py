"""The DaVinci Resolve script (nodes/resolve) against a fake `DaVinciResolveScript`
(tests/fake_resolve.py), with real dubs of a few frames of a real clip."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import fake_resolve
from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.media.audio import SAMPLE_RATE, load_audio
from lipsync_core.media.frames import open_plate
from lipsync_core.ops import operation

RESOLVE_DIR = Path(__file__).resolve().parents[1] / "nodes" / "resolve"


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(RESOLVE_DIR))
    import lipsync_resolve

    yield lipsync_resolve
    sys.modules.pop("DaVinciResolveScript", None)


def test_the_scripts_options_are_the_dub_operations_parameters(script):
    op = operation("generate")
    parser = script.build_parser(script.node_params())
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    node_params = {p.name for p in op.all() if p.node}
    # Every parameter a host may set is an option; the pictures come from the clip; the rest are the script's own.
    assert dests == (node_params - set(script.PICTURES)) | set(script.HOST_OPTIONS)
    assert node_params & set(script.PICTURES) == {"plate", "output", "mask"}
    for param in op.all():
        if param.name in dests and not param.positional and param.default is not None and not param.animatable:
            assert parser.get_default(param.name) == param.default, param.name


def test_sequence_names_as_resolve_writes_them(script):
    assert script.plate_of("/shots/010/plate.[1001-1100].exr") == ("/shots/010/plate.####.exr", 1001)
    assert script.plate_of("/shots/010/take 3.mov") == ("/shots/010/take 3.mov", 0)


def test_clips_that_cannot_be_dubbed_are_named_and_nothing_is_imported(script, tmp_path, capsys):
    timeline = fake_resolve.Timeline([
        fake_resolve.TimelineItem("title", None, 0, 10, flags=["Green"]),
        fake_resolve.TimelineItem("slow", fake_resolve.MediaPoolItem(str(tmp_path / "a.mov"), 50), 0, 10, flags=["Green"]),
        fake_resolve.TimelineItem("unflagged", fake_resolve.MediaPoolItem(str(tmp_path / "b.mov"), 25), 0, 10),
        fake_resolve.TimelineItem("fast", fake_resolve.MediaPoolItem(str(tmp_path / "c.mov"), 25), 0, 10, flags=["Green"],
                                  source_frames=20),
    ], fps=25)
    project = fake_resolve.install(timeline)
    assert script.main([str(tmp_path / "dub.wav"), "--flag", "Green"]) == 1
    err = capsys.readouterr().err
    assert "title: it has no media file" in err
    assert "slow: its media runs at 50 fps and the timeline at 25" in err
    assert "fast: it is retimed (20 source frames play over 10 timeline frames)" in err
    assert "unflagged" not in err and project.pool.imported == []
    timeline.current = None
    assert script.main([str(tmp_path / "dub.wav")]) == 2
    assert "no video clip under the playhead" in capsys.readouterr().err


def test_the_script_and_what_it_imports_are_valid_python_3_6(script):
    # Resolve documents Python 3.6+: no syntax newer than 3.6, and no `from __future__ import annotations` (3.7).
    modules = [RESOLVE_DIR / "lipsync_resolve.py"] + [
        script.REPO / "lipsync_core" / name for name in ("__init__.py", "errors.py", "dub/__init__.py", "dub/timing.py", "dub/worker.py")
    ]
    for path in modules:
        tree = ast.parse(path.read_text(), str(path), feature_version=(3, 6))
        future = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__" for a in n.names]
        assert "annotations" not in future, path


def _user(audio="", clips=None, output="", press="Dub", then=None):
    """The user in the script's dialog: fills it in and presses a button (then, optionally, another)."""
    def act(window):
        items = window.GetItems()
        items["Audio"].Text, items["Output"].Text = audio, output
        if clips is not None:
            items["Clips"].CurrentIndex = items["Clips"].items.index(clips)
        getattr(window.On, press).Clicked(None)
        if then is not None:
            getattr(window.On, then).Clicked(None)
    return act


def test_run_from_the_scripts_menu_it_asks_in_a_dialog_and_cancel_does_nothing(script, tmp_path, capsys):
    clip = fake_resolve.TimelineItem("shot 010", fake_resolve.MediaPoolItem(str(tmp_path / "a.mov"), 25), 0, 10)
    project = fake_resolve.install(fake_resolve.Timeline([clip], fps=25))
    project.ui.user = _user(press="Cancel")
    assert script.main([]) == 0  # no arguments: a dialog, not argparse's usage error
    # Dub with no audio chosen keeps the dialog open and says why; Cancel then closes it.
    project.ui.user = _user(press="Dub", then="Cancel")
    assert script.main([]) == 0
    assert project.pool.imported == [] and capsys.readouterr().err == ""
    # Browse fills the field with what Resolve's file browser returned.
    project.requested = str(tmp_path / "dub.wav")

    def browse(window):
        window.On.BrowseAudio.Clicked(None)
        assert window.GetItems()["Audio"].Text == str(tmp_path / "dub.wav")
        window.On.Cancel.Clicked(None)

    project.ui.user = browse
    assert script.main([]) == 0


def test_each_flagged_clip_is_dubbed_with_the_audio_under_its_place_on_the_timeline(
    script, plate, dub_audio, tiny_model, tmp_path, monkeypatch
):
    # Two shots of the same plate, flagged: A at the timeline's first frame, B one second (25 frames) later.
    media = fake_resolve.MediaPoolItem(str(plate), 25)
    shot_a = fake_resolve.TimelineItem("shot A", media, left=20, duration=4, flags=["Green"], start=90000)
    shot_b = fake_resolve.TimelineItem("shot B", media, left=40, duration=4, flags=["Green"], start=90025)
    project = fake_resolve.install(fake_resolve.Timeline([shot_a, shot_b], fps=25, current=None))
    project.ui.user = _user(audio=str(dub_audio), clips="clips flagged Green", output=str(tmp_path / "dubs"))
    # The dialog gives the audio, the clips and the folder; the render options are the defaults but for speed.
    chosen = script.ask

    def ask_then_render_small(resolve, bmd):
        return chosen(resolve, bmd) + ["--model", str(tiny_model), "--device", "cpu", "--batch", "2"]

    monkeypatch.setattr(script, "ask", ask_then_render_small)

    assert script.main([]) == 0

    outputs = [tmp_path / "dubs" / "plate_20-23_lipsync_v001.mov", tmp_path / "dubs" / "plate_40-43_lipsync_v001.mov"]
    assert project.pool.imported == [str(o) for o in outputs]
    dub = load_audio(dub_audio)
    for clip, output, record_s in ((shot_a, outputs[0], 0.0), (shot_b, outputs[1], 1.0)):
        assert clip.calls[1] == ("SelectTakeByIndex", 2) and clip.takes[0] is clip.media
        with open_plate(output) as result:
            assert result.info.frame_count == 4
        heard = load_audio(output)
        start = int(record_s * SAMPLE_RATE)
        assert np.corrcoef(heard, dub[start:start + len(heard)])[0, 1] > 0.9, clip.name
    assert (tmp_path / "dubs" / "lipsync_job.json").exists()  # the worker ran in the output folder


def test_the_clip_under_the_playhead_gets_its_dubbed_source_range_as_a_new_selected_take(
    script, plate, dub_audio, tiny_model, tmp_path
):
    clip = fake_resolve.TimelineItem("shot 010", fake_resolve.MediaPoolItem(str(plate), 25), left=20, duration=4)
    project = fake_resolve.install(fake_resolve.Timeline([clip], fps=25))

    code = script.main([str(dub_audio), "--model", str(tiny_model), "--device", "cpu", "--batch", "2",
                        "--output-dir", str(tmp_path / "dubs")])

    assert code == 0
    output = tmp_path / "dubs" / "plate_20-23_lipsync_v001.mov"
    assert project.pool.imported == [str(output)]
    assert clip.calls[0][0] == "AddTake" and clip.calls[0][1].GetClipProperty("File Path") == str(output)
    assert clip.calls[1] == ("SelectTakeByIndex", 2) and clip.takes[0] is clip.media  # the original is take 1
    with open_plate(output) as result, open_plate(plate) as source:
        assert result.info.frame_count == 4
        assert (result.info.width, result.info.height) == (source.info.width, source.info.height)
    # The clip sits at the timeline's first frame: it hears the dub from its top, not from the media's frame 20.
    heard = load_audio(output)
    assert np.corrcoef(heard, load_audio(dub_audio)[: len(heard)])[0, 1] > 0.9
