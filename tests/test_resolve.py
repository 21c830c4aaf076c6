"""The DaVinci Resolve script (nodes/resolve) against a fake `DaVinciResolveScript`
(tests/fake_resolve.py), with one real dub of a few frames of a real clip."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import fake_resolve
from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.media.audio import load_audio
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
    parser = script.build_parser(op)
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
    ], fps=25)
    project = fake_resolve.install(timeline)
    assert script.main([str(tmp_path / "dub.wav"), "--flag", "Green"]) == 1
    err = capsys.readouterr().err
    assert "title: it has no media file" in err
    assert "slow: its media runs at 50 fps and the timeline at 25" in err
    assert "unflagged" not in err and project.pool.imported == []
    timeline.current = None
    assert script.main([str(tmp_path / "dub.wav")]) == 2
    assert "no video clip under the playhead" in capsys.readouterr().err


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
    # The dub starts at the clip's first frame, not at the start of its media file.
    heard = load_audio(output)
    assert np.corrcoef(heard, load_audio(dub_audio)[: len(heard)])[0, 1] > 0.9
