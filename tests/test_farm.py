"""`lipsync farm job`: a shot list as a render-farm job gives the files one `lipsync dub` gives. Open Job
Description's `openjd run` runs the whole job here, task by task, as a farm would; OpenCue's outline is loaded with
pyoutline as `pycuerun` loads it, and each of its layers run by hand as a render node runs it (Cuebot cannot run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from lipsync_core.cli import main as cli_main
from lipsync_core.provenance.verify import VALID, verify

from dub_fixtures import dub_audio, plate  # noqa: F401 (pytest fixtures)

REPO = Path(__file__).resolve().parents[1]
OPENJD = Path(sys.executable).with_name("openjd")
FRAMES = (10, 25)  # 16 frames in chunks of 8: two render tasks per shot
OFFSET = "--audio-offset=3f"


def _openjd(*args: str) -> dict:
    # The job's tasks run `lipsync` from this checkout, as a farm's workers run the installed one.
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(OPENJD), *args, "--output", "json"], capture_output=True, text=True, env=env)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["message"] + "".join(f"\n{line.get('message', '')}" for line in report.get("logs", [])[-40:])
    return report


def _decoded(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Every picture and every audio sample of a movie, as a player decodes them."""
    with av.open(str(path)) as container:
        pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        samples = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=-1)
    return pictures, samples


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("dub.*.png"))}


@pytest.fixture(scope="module")
def one_dub(plate, dub_audio, tmp_path_factory) -> Path:
    """The same shot rendered by one `lipsync dub`, as a movie and as a sequence."""
    folder = tmp_path_factory.mktemp("one")
    for output in ("dub.mp4", "dub.####.png"):
        frames = f"{FRAMES[0]}-{FRAMES[1]}"
        assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(folder / output), "--frames", frames, OFFSET]) == 0
    return folder


def _assert_same_movie(farm: Path, one: Path) -> None:
    from lipsync_core.provenance.credentials import read_credentials

    farm_pictures, farm_samples = _decoded(farm)
    one_pictures, one_samples = _decoded(one)
    assert len(farm_pictures) == len(one_pictures) == FRAMES[1] - FRAMES[0] + 1
    assert all(np.array_equal(a, b) for a, b in zip(farm_pictures, one_pictures))
    assert np.array_equal(farm_samples, one_samples)
    # Signed as one dub's movie is, with the same claims (model, audio, plate, the frames dubbed).
    farm_claims, one_claims = read_credentials(farm), read_credentials(one)
    assert farm_claims is not None and farm_claims.valid, farm_claims
    assert farm_claims.dub == one_claims.dub


def _shot_list(folder: Path, plate: Path, dub_audio: Path, outputs: tuple[str, ...]) -> Path:
    shots = folder / "shots.csv"
    rows = "".join(f"{plate},{dub_audio},{FRAMES[0]}-{FRAMES[1]},farm/{output}\n" for output in outputs)
    shots.write_text("plate,audio,frames,output\n" + rows)
    return shots


def test_openjd_job_run_by_openjd_writes_what_one_dub_writes(plate, dub_audio, one_dub, tmp_path):
    shots = _shot_list(tmp_path, plate, dub_audio, ("dub.mp4", "dub.####.png"))
    assert cli_main(["farm", "job", str(shots), "-o", str(tmp_path / "job"), "--chunk-size", "8", OFFSET]) == 0
    template = tmp_path / "job" / "template.json"
    check = subprocess.run([str(OPENJD), "check", str(template)], capture_output=True, text=True)
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr
    steps = [step["name"] for step in json.loads(template.read_text())["steps"]]
    assert [name.split()[-1] for name in steps] == ["analyze", "render", "assemble"] * 2

    report = _openjd("run", str(template))
    # Per shot: the analyze task, two chunks, the assemble task (the movie joined, the sequence signed).
    assert report["status"] == "success" and report["chunks_run"] == 2 * (1 + 2 + 1)

    _assert_same_movie(tmp_path / "farm" / "dub.mp4", one_dub / "dub.mp4")
    one = _files(one_dub)
    assert list(one) == [f"dub.{n:04d}.png" for n in range(FRAMES[0], FRAMES[1] + 1)]
    assert _files(tmp_path / "farm") == one
    # The job's range is a part of the shot: no render task completes the shot, the assemble task signs the sequence.
    signed = verify(tmp_path / "farm" / "dub.####.png")
    assert signed.status == VALID and signed.sidecar == tmp_path / "farm" / "dub.png.c2pa"
    assert signed.credentials.dub["render"] == {"first": FRAMES[0], "last": FRAMES[1]}
    assert (signed.frame_check.signed, signed.frame_check.changed) == (FRAMES[1] - FRAMES[0] + 1, [])

    # A chunk whose worker died mid-frame (a frame cut short), run again as a scheduler re-queues it.
    cut = tmp_path / "farm" / "dub.0020.png"
    cut.write_bytes(cut.read_bytes()[:1000])
    _openjd("run", str(template), "--step", steps[4], "--task-param", "Frames=18-25", "--no-run-dependencies")
    assert _files(tmp_path / "farm") == one


def test_opencue_outline_has_the_layers_and_each_layer_run_by_hand_does_its_part(plate, dub_audio, one_dub, tmp_path,
                                                                                 monkeypatch):
    import outline
    from outline.depend import DependType

    shots = _shot_list(tmp_path, plate, dub_audio, ("dub.mp4",))
    assert cli_main(["farm", "job", str(shots), "-o", str(tmp_path / "job"), "--engine", "opencue", "--chunk-size", "8",
                     OFFSET]) == 0
    job = outline.load_outline(str(tmp_path / "job" / "lipsync.outline"))
    layers = {layer.get_name(): layer for layer in job.get_layers()}
    assert list(layers) == ["1_plate.mpg_analyze", "1_plate.mpg_render", "1_plate.mpg_assemble"]
    analyze, render, assemble = layers.values()
    assert (render.get_frame_range(), render.get_chunk_size()) == (f"{FRAMES[0]}-{FRAMES[1]}", 8)
    assert [analyze.get_frame_range(), assemble.get_frame_range()] == ["1", "1"]
    # Each layer waits for the whole of the one before it.
    assert [[(d.get_depend_on_layer().get_name(), d.get_type()) for d in layer.get_depends()] for layer in layers.values()] == [
        [], [("1_plate.mpg_analyze", DependType.LayerOnLayer)], [("1_plate.mpg_render", DependType.LayerOnLayer)]]
    command = render.get_arg("command")
    assert command[1:5] == ["dub", str(plate), str(dub_audio), "-o"] and "--resume" in command and OFFSET in command

    # As pycuerun runs them on render nodes: a layer's frame, a chunk's first frame.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    outline.config.set("outline", "session_dir", str(tmp_path / "sessions"))
    job.setup()
    analyze.execute(1)
    for first in range(FRAMES[0], FRAMES[1] + 1, 8):
        render.execute(first)
    assemble.execute(1)
    _assert_same_movie(tmp_path / "farm" / "dub.mp4", one_dub / "dub.mp4")


def test_batch_farm_writes_the_job_farm_job_writes_and_renders_nothing(plate, dub_audio, tmp_path, capsys):
    shots = _shot_list(tmp_path, plate, dub_audio, ("dub.mp4", "dub.####.exr"))
    assert cli_main(["batch", str(shots), "--farm", "openjd", "--chunk-size", "8", OFFSET]) == 0
    assert cli_main(["farm", "job", str(shots), "-o", str(tmp_path / "job"), "--chunk-size", "8", OFFSET]) == 0
    assert (tmp_path / "shots.job" / "template.json").read_text() == (tmp_path / "job" / "template.json").read_text()
    assert not (tmp_path / "farm").exists()

    # A ProRes movie cannot be joined from chunks: refused when the job is written, not on the farm.
    mov = _shot_list(tmp_path, plate, dub_audio, ("dub.mov",))
    capsys.readouterr()
    assert cli_main(["farm", "job", str(mov), "-o", str(tmp_path / "mov_job")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("dub.mov: a farm writes .mp4 or an image sequence (out.####.exr, out.####.png); a .mov "
                          "cannot be joined from chunks") and "\n" not in error
    assert not (tmp_path / "mov_job").exists()


def test_assemble_before_every_chunk_is_rendered_names_the_missing_frames(plate, dub_audio, tmp_path, capsys):
    chunks = tmp_path / ".dub.chunks" / "dub.####.png"
    chunks.parent.mkdir()
    (chunks.parent / "dub.0010.png").write_bytes(b"")  # one frame there (its content is the render's business)
    code = cli_main(["farm", "assemble", str(plate), str(dub_audio), str(chunks), "-o", str(tmp_path / "dub.mp4"),
                     "--frames", f"{FRAMES[0]}-{FRAMES[1]}"])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(f"dub.####.png: frames 11-{FRAMES[1]} are not rendered yet: run their "
                                                    "render tasks (again) before assembling")
    assert not (tmp_path / "dub.mp4").exists()


def test_a_shot_lists_appearance_and_actor_reach_every_render_task(plate, dub_audio, tmp_path):
    """The footage a batch row adds (clips separated by '|', an actor file) goes into each render task's dub, as
    absolute paths: the farm's workers start elsewhere."""
    import argparse

    from lipsync_core.farm.job import farm_shots

    shots = tmp_path / "shots.csv"
    shots.write_text(f"plate,audio,output,appearance,actor\n{plate},{dub_audio},farm/dub.####.png,"
                     "takes/take2.mov|reels/interview.mov,actors/jane.safetensors\n")
    args = argparse.Namespace(lipsync="lipsync", model=None, face=None, audio_offset="0", mouth="auto", device="cpu",
                              batch=8, motion_model=None, colourspace=None, ocio=None)
    render = farm_shots([shots], args)[0].render
    added = [render[i + 1] for i, word in enumerate(render) if word in ("--appearance", "--actor")]
    assert added == [str(tmp_path / "actors/jane.safetensors"), str(tmp_path / "takes/take2.mov"),
                     str(tmp_path / "reels/interview.mov")]
