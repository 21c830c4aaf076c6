"""`lipsync analyze`: the cached track, the preview a person checks, the summary, the shot's choices."""

from __future__ import annotations

import json
import shutil

import pytest

from lipsync_core.cli import main
from lipsync_core.face.track import Track
from lipsync_core.media.frames import open_plate


@pytest.fixture()
def plate(shared_data, tmp_path):
    copy = tmp_path / "shot" / "grid.mpg"
    copy.parent.mkdir()
    shutil.copy(shared_data / "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg", copy)
    return copy


def test_analyze_writes_track_preview_shot_and_summary(plate, capsys):
    assert main(["analyze", str(plate), "--frames", "10-39", "--face", "0"]) == 0
    summary = capsys.readouterr().out
    folder = plate.parent
    track = Track.load(folder / "grid.mpg.lipsync.track.npz")
    assert track.frames.tolist() == list(range(10, 40)) and track.face(0).present.all()
    with open_plate(folder / "grid.mpg.lipsync.preview.mp4") as preview:
        assert len(preview) == 30
    shot = json.loads((folder / "grid.mpg.lipsync.json").read_text())
    assert shot["frames"] == [10, 39] and shot["face"] == 0 and shot["source"] == "grid.mpg"
    assert "frames 10-39 (30 frames)" in summary
    assert "faces seen  1" in summary and "with face   30 frames" in summary and "no face     0 frames" in summary
    assert "yaw" in summary and "pitch" in summary and "roll" in summary

    # The shot now holds the range: a second run without options reuses the cached track.
    assert main(["analyze", str(plate), "--no-preview"]) == 0
    assert "from the cache" in capsys.readouterr().out


def test_analyze_names_the_faces_that_exist(plate, capsys):
    assert main(["analyze", str(plate), "--frames", "0-4", "--face", "3", "--no-preview"]) == 2
    assert "face 3 does not exist" in capsys.readouterr().err
