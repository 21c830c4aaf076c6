"""Hostile input: what a careless user hands the tool must end in one clear line, never a traceback, a crash or
a wrong result reported as success; inputs stay byte-identical and nothing is left under an output's name.

Inputs here: timelines, shot lists, sidecars and other JSON, model files, command-line options.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dub_fixtures import TINY, dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.cli import main as cli_main
from lipsync_core.dub.batch import read_shot_list
from lipsync_core.dub.pipeline import dub
from lipsync_core.dub.timeline import plan
from lipsync_core.errors import ModelError, ShotError
from lipsync_core.models.actor import DEFAULT_MODEL, load_generator, save_actor
from lipsync_core.models.checkpoint import load_checkpoint, save_checkpoint
from lipsync_core.models.motion import DEFAULT_MOTION_MODEL, load_motion_model
from lipsync_core.models.stylelipsync import StyleLipSync
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.motion.curves import CurvesError, read_curves
from lipsync_core.shot import Shot

FPS = 25
REPOSITORY = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: what must be the same before and after a refused command."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# ------------------------------------------------------------------------------------------ timelines


def _range(start: float, duration: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, FPS), otio.opentime.RationalTime(duration, FPS))


def _clip(name: str, url: str, start: float, duration: float) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(target_url=url, available_range=_range(0, 75))
    return otio.schema.Clip(name=name, media_reference=reference, source_range=_range(start, duration))


def _timeline(shots: list[otio.schema.Clip], dub_url: str) -> otio.schema.Timeline:
    """The shots one after another on V1; one dub line on the 'dub' track under all of them."""
    timeline = otio.schema.Timeline(name="reel 1")
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    video.extend(shots)
    dub_track = otio.schema.Track(name="dub", kind=otio.schema.TrackKind.Audio)
    dub_track.append(_clip("line 1", dub_url, 0, sum(c.source_range.duration.value for c in shots)))
    timeline.tracks.extend([video, dub_track])
    return timeline


def test_dub_timeline_in_the_readmes_form_with_a_relative_output(plate, dub_audio, tiny_model, tmp_path, monkeypatch, capsys):
    """`lipsync dub-timeline edit.otio -o out/new.otio` run in the edit's folder: media named relative to the
    timeline (OTIO's convention), outputs relative to the working directory, and the new timeline points at
    the frames that were written."""
    monkeypatch.chdir(tmp_path)
    media = os.path.relpath(plate, tmp_path)  # the plate, as a relative URL from the timeline's folder
    Path("edit.otio").write_text(otio.adapters.write_to_string(
        _timeline([_clip("shot A", media, 20, 3)], otio.url_utils.url_from_filepath(str(dub_audio)))))
    before = _files(tmp_path)

    code = cli_main(["dub-timeline", "edit.otio", "-o", "out/new.otio", "--format", "png",
                     "--model", str(tiny_model), "--device", "cpu", "--batch", "3"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "1 done, 0 skipped, 0 failed" in printed
    assert not Path("/out/new_media").exists(), "frames were written at the filesystem root"
    # Hidden beside the frames: the render's settings record (.NAME.####.png.render.json).
    frames = sorted(p.name for p in (tmp_path / "out" / "new_media").iterdir() if not p.name.startswith("."))
    assert frames == [f"001_shot_A.{n:04d}.png" for n in (20, 21, 22)]

    shot = otio.adapters.read_from_file("out/new.otio").video_tracks()[0].find_clips()[0]
    written = [Path(otio.url_utils.filepath_from_url(shot.media_reference.target_url_for_image_number(i))) for i in range(3)]
    assert written == [tmp_path / "out" / "new_media" / f"001_shot_A.{n:04d}.png" for n in (20, 21, 22)]
    assert all(path.is_file() for path in written)
    after = _files(tmp_path)
    assert {name: data for name, data in after.items() if name in before} == before, "an input was changed"


def test_relative_media_is_found_from_the_timelines_folder_not_the_working_directory(tmp_path, monkeypatch):
    edit = tmp_path / "edit"
    edit.mkdir()
    monkeypatch.chdir(tmp_path)
    timeline = _timeline([_clip("shot A", "media/plate.mov", 0, 5)], "dub.wav")
    job, = plan(timeline, edit, "dub")
    assert job.plate == edit / "media" / "plate.mov" and job.audio == edit / "dub.wav"


def test_dub_timeline_names_each_clip_whose_media_is_missing_damaged_or_remote(plate, dub_audio, tmp_path, capsys):
    (tmp_path / "damaged.mov").write_bytes(b"not a movie, the render farm ran out of disk" * 10)
    shots = [
        _clip("missing", "media/gone.mov", 0, 5),
        _clip("damaged", "damaged.mov", 0, 5),
        _clip("remote", "https://cdn.example.com/reel1/shot3.mov", 0, 5),
        _clip("windows", "C:/projects/reel1/shot4.mov", 0, 5),
        otio.schema.Clip(name="offline", media_reference=otio.schema.MissingReference(), source_range=_range(0, 5)),
        _clip("early", otio.url_utils.url_from_filepath(str(plate)), -50, 5),  # frames before the media's first
    ]
    source = tmp_path / "edit.otio"
    otio.adapters.write_to_file(_timeline(shots, otio.url_utils.url_from_filepath(str(dub_audio))), str(source))
    before = _files(tmp_path)

    code = cli_main(["dub-timeline", str(source), "-o", str(tmp_path / "new.otio")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"lipsync dub-timeline: error: {source}: none of its 6 clip(s) with dub audio could "
                                   f"be dubbed, e.g. missing (")
    assert captured.err.endswith("; nothing written\n") and "Traceback" not in captured.err
    rows = {line.split()[1]: line for line in captured.out.splitlines() if " failed " in line}
    assert f"{tmp_path / 'media' / 'gone.mov'}: file not found" in rows["missing"] and "relink" in rows["missing"]
    assert "damaged.mov: cannot be read" in rows["damaged"] and "relink" in rows["damaged"]
    assert "https://cdn.example.com/reel1/shot3.mov, not a local file: download it" in rows["remote"]
    assert "C:/projects/reel1/shot4.mov, a Windows drive path" in rows["windows"]
    assert "offline in the edit" in rows["offline"]
    assert "frame range -50--46 is outside the plate" in rows["early"]
    assert "0 done, 0 skipped, 6 failed" in captured.out
    assert _files(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["damaged.mov", "edit.otio"], \
        "a refused timeline left files or folders behind"


@pytest.mark.parametrize(("source_range", "message"), [
    (None, "clip 'shot A' has no length (Cannot compute available range"),
    (otio.opentime.TimeRange(otio.opentime.RationalTime(0, 0), otio.opentime.RationalTime(5, 0)),
     "clip 'shot A' has a frame rate of 0.0 in its range: export the timeline again"),
])
def test_a_clip_the_timeline_cannot_place_is_named(tmp_path, capsys, source_range, message):
    clip = otio.schema.Clip(name="shot A", media_reference=otio.schema.ExternalReference(target_url="plate.mov"),
                            source_range=source_range)
    source = tmp_path / "edit.otio"
    otio.adapters.write_to_file(_timeline([clip], "dub.wav") if source_range else otio.schema.Timeline(
        tracks=[otio.schema.Track(children=[clip])]), str(source))
    assert cli_main(["dub-timeline", str(source), "-o", str(tmp_path / "new.otio")]) == 2
    assert capsys.readouterr().err.startswith(f"lipsync dub-timeline: error: {source}: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.otio"]


def test_a_timeline_nested_100000_levels_deep_is_refused_without_crashing(tmp_path):
    # OTIO's JSON reader overflows the stack on this and kills the process: run it as a user would.
    source = tmp_path / "edit.otio"
    source.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ' + _deep(100_000) + "}")
    before = _files(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "lipsync_core.cli", "dub-timeline", str(source), "-o", str(tmp_path / "new.otio")],
        capture_output=True, text=True, cwd=REPOSITORY, env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"lipsync dub-timeline: error: {source}: not a readable JSON timeline (nested too deeply: is it the right file?)"
    assert _files(tmp_path) == before


# ------------------------------------------------------------------------------------------ shot lists


SHOTS = "plate,output\nshots/010/plate.mov,renders/010.mov\n"


@pytest.mark.parametrize(("name", "data"), [
    ("excel_utf8.csv", b"\xef\xbb\xbf" + SHOTS.encode()),  # Excel's "CSV UTF-8": a byte-order mark first
    ("unicode.csv", SHOTS.encode("utf-16")),  # "Unicode text": UTF-16 with its byte-order mark
    ("german.csv", SHOTS.replace(",", ";").encode()),  # where the comma is the decimal mark, ';' separates
    ("windows.csv", SHOTS.replace("\n", "\r\n").encode()),
])
def test_shot_lists_saved_by_spreadsheets_read_as_written(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    assert read_shot_list(path) == [{"plate": "shots/010/plate.mov", "output": "renders/010.mov"}]


def test_batch_with_a_bom_csv_fails_on_the_missing_plate_not_on_the_header(tmp_path, capsys):
    path = tmp_path / "shots.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SHOTS.encode())
    assert cli_main(["batch", str(path)]) == 1
    printed = capsys.readouterr().out
    assert "unknown field" not in printed
    assert f"{tmp_path / 'shots/010/plate.mov'}: file not found" in printed


EMPTY = "holds no shots: give one row per shot with at least plate and output (see `lipsync batch --help`)"


@pytest.mark.parametrize(("data", "message"), [
    ("plate,output\nsc\xe8ne_010.mov,out.mov\n".encode("latin-1"),
     "the shot list is not UTF-8 text (byte 0xe8 at offset 15; Latin-1 or another legacy encoding?): "
     "save it as 'CSV UTF-8' in a spreadsheet's Save As"),
    (b"", EMPTY),
    (b"plate,output\n", EMPTY),
    (b"plate,output\n,\n", EMPTY),
])
def test_batch_refuses_an_unreadable_or_empty_csv_in_one_line(tmp_path, capsys, data, message):
    path = tmp_path / "shots.csv"
    path.write_bytes(data)
    assert cli_main(["batch", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"lipsync batch: error: {path}: {message}\n"
    assert "0 done" not in captured.out
    assert _files(tmp_path) == {"shots.csv": data}


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "holds no shots: give one object per shot"),
    ('{"shots": ' + _deep(100_000) + "}", "not a readable JSON shot list (nested too deeply: is it the right file?)"),
])
def test_batch_refuses_an_empty_or_absurd_json_shot_list(tmp_path, capsys, text, message):
    path = tmp_path / "shots.json"
    path.write_text(text)
    assert cli_main(["batch", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"lipsync batch: error: {path}: {message}")


def test_a_bad_face_or_offset_in_a_shot_list_fails_that_shot_with_its_reason(plate, dub_audio, tmp_path, capsys):
    path = tmp_path / "shots.json"
    shot = {"plate": str(plate), "audio": str(dub_audio)}
    path.write_text(f'[{json.dumps({**shot, "output": "a.mov", "face": "first"})},'
                    f' {json.dumps({**shot, "output": "b.mov"})[:-1]}, "audio_offset": NaN}}]')
    assert cli_main(["batch", str(path)]) == 1
    printed = capsys.readouterr().out
    assert "face 'first': must be a whole number, 0 or more" in printed
    assert "audio offset nan: must be a finite number of seconds" in printed
    assert "Error:" not in printed  # no exception type names: every reason is written for a user
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shots.json"]


# ------------------------------------------------------------------------------------------ sidecars


def test_a_sidecar_nested_100000_levels_deep_is_a_shot_error(plate, dub_audio, tmp_path, capsys):
    sidecar = tmp_path / "deep.lipsync.json"
    sidecar.write_text('{"version": 1, "source": "plate.mpg", "mask": ' + _deep(100_000) + "}")
    out = tmp_path / "out.mp4"
    code = cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--shot", str(sidecar)])
    assert code == 2
    assert capsys.readouterr().err == (f"lipsync dub: error: {sidecar}: not a readable JSON shot sidecar "
                                       "(nested too deeply: is it the right file?)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.lipsync.json"]


@pytest.mark.parametrize(("value", "expected"), [
    (json.loads(_deep(900)), "face must be a whole number, not [[[[["),  # deep, but within what JSON parses here
    ("x" * 100_000, 'face must be a whole number, not "xxxxx'),
    (-1, "face is -1: must be at least 0"),
])
def test_a_bad_sidecar_value_is_quoted_short(tmp_path, value, expected):
    sidecar = tmp_path / "plate.mp4.lipsync.json"
    sidecar.write_text(json.dumps({"version": 1, "source": "plate.mp4", "face": value}))
    with pytest.raises(ShotError) as error:
        Shot.load(sidecar)
    assert expected in str(error.value) and len(str(error.value)) < len(str(sidecar)) + 200  # a value, not 100 kB of it


def test_a_utf16_sidecar_reads_and_a_latin1_one_says_what_to_do(tmp_path):
    sidecar = tmp_path / "plate.mp4.lipsync.json"
    sidecar.write_text(json.dumps({"version": 1, "source": "plate.mp4", "face": 1}), encoding="utf-16")
    assert Shot.load(sidecar).face == 1
    sidecar.write_bytes('{"version": 1, "source": "pl\xe4te.mp4"}'.encode("latin-1"))
    with pytest.raises(ShotError, match="is not UTF-8 text .*: save it as UTF-8 in your editor"):
        Shot.load(sidecar)


def test_motion_curves_nested_deep_or_saved_as_utf16_by_a_spreadsheet(tmp_path):
    model = load_motion_model()
    deep = tmp_path / "motion.json"
    deep.write_text('{"version": 1, "frames": ' + _deep(100_000) + "}")
    with pytest.raises(CurvesError, match=r"motion.json: not a readable JSON motion curves file \(nested too deeply"):
        read_curves(deep, model)
    # A spreadsheet's "Unicode text" is UTF-16: read as such, the file gets as far as its header check.
    edited = tmp_path / "motion.csv"
    edited.write_text("frame,time,opening\n", encoding="utf-16")
    with pytest.raises(CurvesError, match=r"motion.csv: header must be frame,time,opening,width,silent"):
        read_curves(edited, model)


# ------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("argv", [
    ["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--grow", "nan"],
    ["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--feather", "inf"],
    ["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--jaw-extension", "NaN"],
    ["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--articulation", "nan"],
    ["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--mouth-margin", "Infinity"],
    ["motion", "plate.mp4", "dub.wav", "-o", "m.json", "--articulation", "inf"],
    ["batch", "shots.csv", "--batch", "nan"],
    ["batch", "shots.csv", "--face", "1e3"],
    ["batch", "shots.csv", "--audio-offset", "nan"],
])
def test_a_non_finite_option_is_blamed_on_the_option(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli_main(argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    option = argv[-2]
    assert error.startswith(f"lipsync {argv[0]}: error: argument {option}: ") and argv[-1] in error
    assert "sidecar" not in error and "lipsync.json" not in error
    assert not any(tmp_path.iterdir())


def test_controls_given_by_a_host_are_blamed_on_the_render_not_on_a_sidecar(plate, dub_audio, tmp_path):
    with pytest.raises(ShotError) as error:
        dub(plate, dub_audio, tmp_path / "out.mp4", mask={"grow": math.nan})
    assert str(error.value) == "the controls given for this render: mask.grow must be a number, not NaN"
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ models


def _poisoned(path: Path, key: str, value: float) -> Path:
    """A copy of a model file with one tensor filled with `value`, its metadata kept."""
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    tensors[key] = torch.full_like(tensors[key], value)
    copy = path.with_name(f"poisoned_{path.name}")
    save_file(tensors, str(copy), metadata=metadata)
    return copy


def test_a_model_with_nan_weights_is_refused_before_anything_is_rendered(plate, dub_audio, tiny_model, tmp_path, capsys):
    model = _poisoned(tiny_model, "generator.decoder.blocks.0.conv1.bias", math.nan)
    model_bytes = model.read_bytes()
    out = tmp_path / "out.mp4"
    code = cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--model", str(model), "--device", "cpu"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"lipsync dub: error: {model}: its generator holds NaN or infinite weights (1 tensor(s), e.g. "
        "decoder.blocks.0.conv1.bias): the file is damaged; retrain or restore it\n")
    assert model.read_bytes() == model_bytes and not any(tmp_path.iterdir())


def test_a_generator_that_overflows_stops_the_render_instead_of_writing_black(plate, dub_audio, tmp_path, capsys):
    # Finite weights, so the file loads; biases near float32's largest value overflow to inf, then NaN.
    torch.manual_seed(0)
    generator = StyleLipSync(TINY)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("to_rgb.bias"):
                parameter.fill_(3e38)
    model = tmp_path / "models" / "unstable.safetensors"
    model.parent.mkdir()
    save_checkpoint(model, {"generator": generator}, TINY)
    renders = tmp_path / "renders"
    renders.mkdir()
    code = cli_main(["dub", str(plate), str(dub_audio), "-o", str(renders / "out.mp4"), "--model", str(model),
                     "--device", "cpu", "--frames", "9-11", "--batch", "3"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"lipsync dub: error: {model}: the generator drew NaN or infinite pixels for frames 9-11")
    assert not any(renders.iterdir()), "a partial render was left under the output's name"


def test_actor_syncnet_and_motion_files_with_nan_weights_are_refused(tiny_model, tmp_path):
    base = tmp_path / "base.safetensors"
    base.write_bytes(tiny_model.read_bytes())
    name = next(n for n, _ in StyleLipSync(TINY).named_parameters() if n.endswith("to_rgb.bias"))
    actor = tmp_path / "actor.safetensors"
    save_actor(actor, {f"set.{name}": torch.full((1, 3, 1, 1), math.inf)}, TINY, base, {})
    with pytest.raises(ModelError, match=rf"^{actor}: actor model holds NaN or infinite weights \(1 tensor\(s\), e\.g\. set\.{name}\)"):
        load_generator(actor)

    syncnet = tmp_path / "syncnet.safetensors"
    save_checkpoint(syncnet, {"syncnet": SyncNet(TINY)}, TINY)
    with safe_open(str(syncnet), framework="pt") as f:
        weight = next(k for k in f.keys() if k.endswith("weight"))
    syncnet = _poisoned(syncnet, weight, math.nan)
    fresh = SyncNet(TINY)
    state = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ModelError, match="its syncnet holds NaN or infinite weights"):
        load_checkpoint(syncnet, {"syncnet": fresh}, TINY)
    assert all(torch.equal(state[k], v) for k, v in fresh.state_dict().items()), "a refused file changed the model"

    motion = tmp_path / "motion.safetensors"
    motion.write_bytes(DEFAULT_MOTION_MODEL.read_bytes())
    motion = _poisoned(motion, "gain", -math.inf)
    with pytest.raises(ModelError, match=rf"^{motion}: motion model holds NaN or infinite weights"):
        load_motion_model(motion)
    assert DEFAULT_MODEL.is_file()  # the bundled models themselves load: the check refuses only damaged files
    load_generator(DEFAULT_MODEL)
    load_motion_model(DEFAULT_MOTION_MODEL)

