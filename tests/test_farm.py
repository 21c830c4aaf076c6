"""`lipsync farm job`: a shot list as a render-farm job, run for real by the engine's own tool, gives the files one
`lipsync dub` gives. Open Job Description's `openjd run` runs the whole job here, task by task, as a farm would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

from lipsync_core.cli import main as cli_main

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


def test_openjd_job_run_by_openjd_writes_what_one_dub_writes(plate, dub_audio, tmp_path):
    shots = tmp_path / "shots.csv"
    frames = f"{FRAMES[0]}-{FRAMES[1]}"
    shots.write_text(f"plate,audio,frames,output\n{plate},{dub_audio},{frames},farm/dub.mp4\n"
                     f"{plate},{dub_audio},{frames},farm/dub.####.png\n")
    assert cli_main(["farm", "job", str(shots), "-o", str(tmp_path / "job"), "--chunk-size", "8", OFFSET]) == 0
    template = tmp_path / "job" / "template.json"
    check = subprocess.run([str(OPENJD), "check", str(template)], capture_output=True, text=True)
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr
    steps = [step["name"] for step in json.loads(template.read_text())["steps"]]
    assert [name.split()[-1] for name in steps] == ["analyze", "render", "assemble", "analyze", "render"]

    report = _openjd("run", str(template))
    # Per shot: the analyze task, two chunks; the movie's assemble task.
    assert report["status"] == "success" and report["chunks_run"] == 2 + 2 * 2 + 1

    for output in ("dub.mp4", "dub.####.png"):
        assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(tmp_path / "one" / output), "--frames", frames, OFFSET]) == 0
    farm_pictures, farm_samples = _decoded(tmp_path / "farm" / "dub.mp4")
    one_pictures, one_samples = _decoded(tmp_path / "one" / "dub.mp4")
    assert len(farm_pictures) == len(one_pictures) == FRAMES[1] - FRAMES[0] + 1
    assert all(np.array_equal(a, b) for a, b in zip(farm_pictures, one_pictures))
    assert np.array_equal(farm_samples, one_samples)
    one = _files(tmp_path / "one")
    assert list(one) == [f"dub.{n:04d}.png" for n in range(FRAMES[0], FRAMES[1] + 1)]
    assert _files(tmp_path / "farm") == one

    # A chunk whose worker died mid-frame (a frame cut short), run again as a scheduler re-queues it.
    cut = tmp_path / "farm" / "dub.0020.png"
    cut.write_bytes(cut.read_bytes()[:1000])
    _openjd("run", str(template), "--step", steps[4], "--task-param", "Frames=18-25", "--no-run-dependencies")
    assert _files(tmp_path / "farm") == one
