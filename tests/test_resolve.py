"""The DaVinci Resolve script (nodes/resolve) against a fake `DaVinciResolveScript`
(tests/fake_resolve.py), with real dubs of a few frames of a real clip."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import fake_resolve
from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.media.audio import SAMPLE_RATE, load_audio
from lipsync_core.media.frames import open_plate
from lipsync_core.media.writers import open_writer
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

    def ask_then_render_small(*args):
        return chosen(*args) + ["--model", str(tiny_model), "--device", "cpu", "--batch", "2"]

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


def _renders(plate: Path, renders: list):
    """What Resolve's render queue writes for a job, appended to `renders`: a .wav of the enabled audio tracks
    between MarkIn and MarkOut (record frames, inclusive), or a .mov of the (temporary) timeline's clip, decoded from
    its camera RAW: here the frames of the real clip `plate` stand for the RAW file's."""
    def renderer(job):
        renders.append(job)
        settings, timeline = job["settings"], job["timeline"]
        if job["format"] == "wav":
            assert settings["ExportAudio"] and not settings["ExportVideo"] and not settings["SelectAllFrames"]
            first, length = settings["MarkIn"], settings["MarkOut"] - settings["MarkIn"] + 1
            mixed = np.zeros(round(length / timeline.fps * SAMPLE_RATE), np.float32)
            for (path, record), enabled in zip(timeline.audio, job["audio_enabled"]):
                if enabled:
                    start = round((first - record) / timeline.fps * SAMPLE_RATE)
                    part = load_audio(path)[start:start + len(mixed)]
                    mixed[:len(part)] += part
            soundfile.write(job["path"], mixed, SAMPLE_RATE)
            return
        assert (job["format"], job["codec"]) == ("mov", "ProRes4444") and settings["SelectAllFrames"]
        assert settings["ExportVideo"] and not settings["ExportAudio"]
        item = timeline.items[0]
        with open_plate(plate, frames=(item.left, item.left + item.duration - 1)) as source:
            info = source.info
            with open_writer(Path(job["path"]), fps=info.fps, width=info.width, height=info.height, inputs=[]) as out:
                for frame in source:
                    out.write(frame.image)
    return renderer


def test_the_dub_can_be_a_timeline_audio_track_which_resolve_renders_under_each_clip(
    script, plate, dub_audio, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr(script, "RENDER_POLL", 0.01)
    dub = load_audio(dub_audio)
    dub_wav = tmp_path / "dub.wav"
    soundfile.write(dub_wav, dub, SAMPLE_RATE)
    # Audio track 1 holds the plate's own sound, track 2 the dub, both from the timeline's first frame; the clip
    # sits one second in.
    shot = fake_resolve.TimelineItem("shot B", fake_resolve.MediaPoolItem(str(plate), 25), left=40, duration=4, start=90025)
    timeline = fake_resolve.Timeline([shot], fps=25, audio=[(str(plate), 90000), (str(dub_wav), 90000)])
    project = fake_resolve.install(timeline)
    renders = []
    project.renderer = _renders(plate, renders)
    folder = tmp_path / "project"

    assert script.main(["--audio-track", "2", "--model", str(tiny_model), "--device", "cpu", "--batch", "2",
                        "--output-dir", str(folder)]) == 0

    # Resolve rendered track 2 alone, audio only, over the clip's four record frames, into the project folder;
    # the other track is enabled again, the job left the queue, the render format is the user's again.
    [job] = renders
    assert job["audio_enabled"] == [False, True] and (job["settings"]["MarkIn"], job["settings"]["MarkOut"]) == (90025, 90028)
    assert job["path"] == str(folder / "plate_40-43_track2_v001.wav")
    assert timeline.audio_enabled == [True, True] and project.jobs == {}
    assert project.GetCurrentRenderFormatAndCodec() == {"format": "mp4", "codec": "H264"}
    # The dubbed take hears the dub from one second in: what track 2 plays under the clip.
    output = folder / "plate_40-43_lipsync_v001.mov"
    assert project.pool.imported == [str(output)] and shot.calls[1] == ("SelectTakeByIndex", 2)
    heard = load_audio(output)
    assert np.corrcoef(heard, dub[SAMPLE_RATE:SAMPLE_RATE + len(heard)])[0, 1] > 0.9


def test_camera_raw_is_rendered_by_resolve_with_handles_into_the_project_folder_and_that_is_dubbed(
    script, plate, dub_audio, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr(script, "RENDER_POLL", 0.01)
    camera = tmp_path / "camera" / "A001_C002.braw"  # Resolve reads it; lipsync never opens it
    media = fake_resolve.MediaPoolItem(str(camera), 25, frames=75)
    clip = fake_resolve.TimelineItem("raw shot", media, left=20, duration=4)
    timeline = fake_resolve.Timeline([clip], fps=25)
    project = fake_resolve.install(timeline)
    renders = []
    project.renderer = _renders(plate, renders)
    folder = tmp_path / "project"

    assert script.main([str(dub_audio), "--handles", "3", "--model", str(tiny_model), "--device", "cpu", "--batch", "2",
                        "--output-dir", str(folder)]) == 0

    # A temporary timeline of the clip's source range with 3 frames either side, rendered to ProRes 4444 in the
    # project folder, then deleted; the editor's timeline is current again.
    assert project.calls[0] == ("CreateTimelineFromClips", "A001_C002_20-23_decoded_v001 (LipSync render)", [(17, 10)])
    assert project.calls[-1] == ("DeleteTimelines", ["A001_C002_20-23_decoded_v001 (LipSync render)"])
    assert project.timeline is timeline and project.pool.timelines == []
    intermediate = folder / "A001_C002_20-23_decoded_v001.mov"
    assert [job["path"] for job in renders] == [str(intermediate)] and not camera.parent.exists()
    # The intermediate is dubbed whole (handles too); the take plays the clip's own four frames of it.
    output = folder / "A001_C002_20-23_lipsync_v001.mov"
    with open_plate(output) as result:
        assert result.info.frame_count == 10
    assert clip.calls[0][2:] == (3, 6) and clip.calls[0][1].GetClipProperty("File Path") == str(output)
    # The clip's first frame (3 frames in) hears the dub's start: the clip sits at the timeline's first frame.
    heard, lead = load_audio(output), round(3 / 25 * SAMPLE_RATE)
    dub = load_audio(dub_audio)
    assert np.corrcoef(heard[lead:], dub[:len(heard) - lead])[0, 1] > 0.9


def test_the_dialog_offers_the_timelines_audio_tracks_as_the_dub(script, tmp_path):
    clip = fake_resolve.TimelineItem("shot 010", fake_resolve.MediaPoolItem(str(tmp_path / "a.mov"), 25), 0, 10)
    project = fake_resolve.install(fake_resolve.Timeline([clip], fps=25, audio=[("a.wav", 90000), ("b.wav", 90000)]))

    def pick_track_2(window):
        items = window.GetItems()
        assert items["AudioSource"].items == ["the file below", "timeline audio track 1", "timeline audio track 2"]
        items["AudioSource"].CurrentIndex = 2
        window.On.Dub.Clicked(None)  # no file needed

    project.ui.user = pick_track_2
    bmd = script.scripting()
    assert script.ask(script.connect(bmd), bmd, 2) == ["--audio-track", "2"]
    # From a shell: a file or a track, not both, not neither.
    parser = script.build_parser(script.node_params())
    for argv in (["a.wav", "--audio-track", "1"], []):
        with pytest.raises(SystemExit):
            script.check_arguments(parser, parser.parse_args(argv))
