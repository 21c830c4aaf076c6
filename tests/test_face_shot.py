"""The shot sidecar and the compositor's mask controls: keyframes, grow/shrink, painted masks, bypass,
and errors that name the field a person has to fix."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipsync_core.errors import ShotError
from lipsync_core.face.geometry import warp_to_crop
from lipsync_core.face.mask import lower_face_mask, shot_mask
from lipsync_core.face.tracker import track_plate
from lipsync_core.shot import Keyframes, MaskOverrides, PaintedMask, Shot, sidecar_path

CLIP = "av/AP0827_test_set_sample1.mp4"


@lru_cache(maxsize=None)
def _track(path: str):
    return track_plate(path, frames=(0, 29))


@pytest.fixture(scope="module")
def track(shared_data):
    return _track(str(shared_data / CLIP))


def _write(folder, data) -> Shot:
    path = folder / "plate.mp4.lipsync.json"
    path.write_text(json.dumps(data))
    return Shot.load(path)


# ------------------------------------------------------------------------------------ the file


def test_sidecar_round_trip_is_readable_json(tmp_path):
    shot = Shot.for_plate(tmp_path / "plate.mp4")
    assert shot.path == tmp_path / "plate.mp4.lipsync.json" and shot.source == "plate.mp4"
    shot.frames = (1001, 1100)
    shot.audio = "audio/dub.wav"
    shot.face = 1
    shot.reference = 1010
    shot.mask = {"grow": 4.0, "feather": None, "offset_y": Keyframes([(1001, 0.0), (1050, -6.0)], "linear")}
    shot.painted = [PaintedMask("roto/mouth.####.png", (1040, 1044), "add")]
    shot.bypass = [(1060, 1065)]
    shot.save()
    text = shot.path.read_text()
    assert '"frames": [1001, 1100]' in text and '"version": 1' in text
    assert Shot.load(shot.path) == shot
    assert Shot.for_plate(tmp_path / "plate.mp4") == shot


def test_appearance_clips_may_live_outside_the_shot_folder(tmp_path):
    """An actor's reel is shared by many shots: absolute and leading-out paths are kept, relative ones read from the
    sidecar's folder; the sidecar says it needs a lipsync that knows appearance footage (version 3)."""
    shot = Shot.for_plate(tmp_path / "shot" / "plate.mp4")
    shot.appearance = ["takes/take2.mov", "../reels/interview.mov", "/shows/x/jane.mov"]
    shot.path.parent.mkdir()
    shot.save()
    assert '"version": 3' in shot.path.read_text() and Shot.load(shot.path) == shot
    assert shot.appearance_paths == [tmp_path / "shot" / "takes/take2.mov", tmp_path / "shot" / "../reels/interview.mov",
                                     Path("/shows/x/jane.mov")]


def test_a_sequence_has_one_sidecar_whichever_frame_names_it(tmp_path):
    assert sidecar_path(tmp_path / "plate.1001.exr") == tmp_path / "plate.####.exr.lipsync.json"
    assert sidecar_path(tmp_path / "plate.####.exr") == tmp_path / "plate.####.exr.lipsync.json"
    assert Shot.for_plate(tmp_path / "plate.1001.exr").source == "plate.####.exr"


def test_keyframes_hold_or_interpolate(tmp_path):
    shot = _write(tmp_path, {
        "version": 1, "source": "plate.mp4",
        "mask": {
            "grow": {"keys": [[10, 0], [20, 10]], "interpolation": "linear"},
            "offset_y": {"keys": [[10, 2], [20, -4]]},
            "jaw_extension": 0.4,
        },
    })
    assert [shot.overrides(f).grow for f in (5, 10, 15, 20, 30)] == [0, 0, 5, 10, 10]
    assert [shot.overrides(f).offset_y for f in (5, 15, 19, 20, 25)] == [2, 2, 2, -4, -4]
    assert shot.overrides(15).jaw_extension == 0.4
    assert shot.overrides(15).feather is None and shot.overrides(15).mouth_margin == MaskOverrides().mouth_margin


@pytest.mark.parametrize(
    "change, field",
    [
        ({"mask_grow": 3}, "mask_grow"),
        ({"mask": {"grw": 3}}, "mask.grw"),
        ({"face": "0"}, "face"),
        ({"face": -1}, "face"),
        ({"face": True}, "face"),
        ({"frames": [1100, 1001]}, "frames"),
        ({"frames": [1001]}, "frames"),
        ({"mask": {"jaw_extension": 3}}, "mask.jaw_extension"),
        ({"mask": {"grow": "big"}}, "mask.grow"),
        ({"mask": {"grow": None}}, "mask.grow"),
        ({"mask": {"feather": -2}}, "mask.feather"),
        ({"mask": {"grow": {"keys": [[20, 1], [10, 2]]}}}, "mask.grow.keys"),
        ({"mask": {"grow": {"keys": [[10, 1, 2]]}}}, "mask.grow.keys[0]"),
        ({"mask": {"grow": {"keys": [[10, 1]], "interpolation": "cubic"}}}, "mask.grow.interpolation"),
        ({"bypass": [[10, 20], [30, 25]]}, "bypass[1]"),
        ({"bypass": "10-20"}, "bypass"),
        ({"painted": [{"path": "roto/m.####.png", "frames": [1, 2], "mode": "multiply"}]}, "painted[0].mode"),
        ({"painted": [{"path": "roto/m.####.png"}]}, "painted[0].frames"),
        ({"painted": [{"path": "../elsewhere/m.####.png", "frames": [1, 2]}]}, "painted[0].path"),
        ({"source": "../other/plate.mp4"}, "source"),
        ({"audio": "/tmp/dub.wav"}, "audio"),
        ({"reference": 5, "frames": [10, 20]}, "reference"),
        ({"version": 7}, "version"),
        ({"appearance": "take2.mov"}, "appearance"),
        ({"appearance": [3]}, "appearance[0]"),
        ({"appearance": [" "]}, "appearance[0]"),
    ],
)
def test_a_malformed_sidecar_names_the_field(tmp_path, change, field):
    data = {"version": 1, "source": "plate.mp4", **change}
    with pytest.raises(ShotError) as error:
        _write(tmp_path, data)
    message = str(error.value)
    assert f" {field} " in message and str(tmp_path) in message


def test_unreadable_or_incomplete_sidecars_are_shot_errors(tmp_path):
    path = tmp_path / "plate.mp4.lipsync.json"
    path.write_text("{ not json")
    with pytest.raises(ShotError, match="not a readable JSON"):
        Shot.load(path)
    path.write_text('{"version": 1}')
    with pytest.raises(ShotError, match="source is missing"):
        Shot.load(path)


def test_save_refuses_an_edit_out_of_range(tmp_path):
    shot = Shot.for_plate(tmp_path / "plate.mp4")
    shot.mask["grow"] = 10_000.0
    with pytest.raises(ShotError, match="mask.grow"):
        shot.save()
    assert not shot.path.exists()


# ------------------------------------------------------------------------------------ masks


def test_grow_shrink_feather_offset_and_jaw_change_the_mask_as_named(track):
    face = track.face(0)
    landmarks, shape = face.landmarks[5], (track.height, track.width)

    def mask(**values):
        return lower_face_mask(landmarks, shape, overrides=MaskOverrides(**values), face=face.shape)

    def area(m):
        return float(m.sum())

    def centre_y(m):
        return float((m.sum(axis=1) * np.arange(m.shape[0])).sum() / m.sum())

    base = mask()
    assert area(mask(grow=6)) > area(base) * 1.05
    assert area(mask(grow=-6)) < area(base) * 0.95
    assert area(mask(jaw_extension=0.6)) > area(base) * 1.05
    assert area(mask(mouth_margin=0.2)) > area(base) * 1.05
    assert centre_y(mask(offset_y=8)) == pytest.approx(centre_y(base) + 8, abs=0.5)
    # Feather softens the edge without moving it: more pixels in between 0 and 1, about the same area.
    soft = mask(feather=20)
    hard = mask(feather=0)
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 3 * ((hard > 0.05) & (hard < 0.95)).sum()
    assert area(soft) == pytest.approx(area(hard), rel=0.05)


def test_overrides_in_the_crop_are_the_plate_pixels_scaled(track):
    face = track.face(0)
    M = face.alignment(5, 128)
    crop = lower_face_mask(face.landmarks[5], (128, 128), M, MaskOverrides(grow=10), face.shape)
    plate = lower_face_mask(face.landmarks[5], (track.height, track.width), None, MaskOverrides(grow=10), face.shape)
    assert np.abs(warp_to_crop(plate, M, 128) - crop).mean() < 0.02


def test_bypass_empties_exactly_those_frames(tmp_path, track):
    shot = Shot.for_plate(tmp_path / "plate.mp4")
    shot.bypass = [(3, 5), (9, 9)]
    shape = (track.height, track.width)
    for frame in range(12):
        mask = shot_mask(shot, track, frame, shape)
        if frame in (3, 4, 5, 9):
            assert not mask.any(), frame
        else:
            assert mask.max() > 0.999, frame


def test_painted_masks_replace_or_add(tmp_path, track):
    shape = (track.height, track.width)
    (tmp_path / "roto").mkdir()
    painted = np.zeros(shape, np.uint8)
    painted[:40, :40] = 255  # a corner far from the face
    for frame in (2, 3):
        cv2.imwrite(str(tmp_path / "roto" / f"mouth.{frame:04d}.png"), painted)
    shot = Shot.for_plate(tmp_path / "plate.mp4")
    shot.painted = [PaintedMask("roto/mouth.####.png", (2, 2), "replace"), PaintedMask("roto/mouth.%04d.png", (3, 3), "add")]
    automatic = shot_mask(shot, track, 1, shape)
    replaced = shot_mask(shot, track, 2, shape)
    added = shot_mask(shot, track, 3, shape)
    assert replaced[:40, :40].min() == 1.0 and replaced.sum() == pytest.approx(40 * 40)
    assert added[:40, :40].min() == 1.0 and added.sum() > automatic.sum()
    # In the crop, the painted mask is warped like the plate.
    M = track.face(0).alignment(3, 128)
    assert shot_mask(shot, track, 3, (128, 128), M).max() > 0.999
    # A painted frame that does not exist is an error naming the field.
    shot.painted = [PaintedMask("roto/missing.####.png", (4, 4), "add")]
    with pytest.raises(ShotError, match=r"painted\[0\]\.path"):
        shot_mask(shot, track, 4, shape)
