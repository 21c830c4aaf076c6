"""Hostile media and audio: plates and dubs a careless user hands over (a replaced plate, a portrait phone
clip, a float dub far above full scale or holding NaN, 10-bit video, variable frame rate, two faces, ...).

Each test asserts what the user sees: the exit code, the message, and that the inputs are untouched
and nothing is left where it should not be.
"""

from __future__ import annotations

import hashlib
import os
import json
import shutil
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest
import soundfile

from lipsync_core.cli import main as cli_main
from lipsync_core.dub.outputs import MASK_LAYER
from lipsync_core.face.track import Track
from lipsync_core.media.audio import decode_audio
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_image
from lipsync_core.media.writers import open_writer

CLIP = "av/rizkiarm_evaluation_samples_GRID_brbk7n.mpg"  # 75 frames, 360x288, 25 fps, one face
OTHER_CLIP = "av/rizkiarm_evaluation_samples_GRID_lbax4n.mpg"  # another speaker
SPEECH = "audio/bytedance_assets_demo1_audio.flac"
CPU = ["--device", "cpu"]


def _contents(folder: Path) -> dict[str, str]:
    """Every file under `folder` and a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def shot(shared_data, tmp_path) -> Path:
    """A folder holding the real clip as plate.mpg."""
    folder = tmp_path / "shot"
    folder.mkdir()
    shutil.copy(shared_data / CLIP, folder / "plate.mpg")
    return folder


def _speech(shared_data: Path, seconds: float = 3.0) -> tuple[np.ndarray, int]:
    """Real speech, starting just before its loudest sample: the first frames of a dub are not silent."""
    samples, rate = soundfile.read(shared_data / SPEECH, dtype="float32")
    start = max(0, int(np.argmax(np.abs(samples))) - rate // 10)
    return samples[start : start + int(seconds * rate)], rate


# ------------------------------------------------------------------------------------------ audio


def test_a_float_dub_far_above_full_scale_is_normalised_by_default_and_clipped_on_request(shared_data, shot, tmp_path, capsys):
    speech, rate = _speech(shared_data)
    loud = tmp_path / "dub" / "loud.wav"
    loud.parent.mkdir()
    soundfile.write(loud, speech / np.abs(speech).max() * 1000.0, rate, subtype="FLOAT")
    inputs = _contents(tmp_path / "dub")

    out = tmp_path / "out" / "normalised.mp4"
    out.parent.mkdir()
    code, stdout, _ = _run(["dub", str(shot / "plate.mpg"), str(loud), "-o", str(out), "--frames", "0-9", *CPU], capsys)
    assert code == 0
    assert "loud.wav: the audio peaks at 1000, 60.0 dB above full scale: scaled down to fit" in stdout
    muxed, _ = decode_audio(out)
    # AAC rings a little around a peak at full scale; a dub muxed as it was would peak near 1000.
    assert 0.5 < np.abs(muxed).max() < 1.2

    clipped = tmp_path / "out" / "clipped.mov"
    code, stdout, _ = _run(["dub", str(shot / "plate.mpg"), str(loud), "-o", str(clipped), "--frames", "0-9",
                            "--audio-peaks", "clip", *CPU], capsys)
    assert code == 0
    assert "samples clipped (--audio-peaks normalise scales it instead)" in stdout
    muxed, _ = decode_audio(clipped)  # 24-bit PCM in a .mov: exactly what was written
    assert np.abs(muxed).max() <= 1.0 and np.mean(np.abs(muxed) > 0.999) > 0.05

    # `lipsync motion` hears the dub as `lipsync dub` does by default, and says so.
    code, stdout, _ = _run(["motion", str(shot / "plate.mpg"), str(loud), "-o", str(tmp_path / "out" / "motion.json")], capsys)
    assert code == 0 and "loud.wav: the audio peaks at 1000, 60.0 dB above full scale: scaled down to fit" in stdout
    assert _contents(tmp_path / "dub") == inputs


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_float_dub_holding_nan_or_infinity_is_refused_by_dub_and_personalize(shared_data, shot, tmp_path, capsys, bad):
    speech, rate = _speech(shared_data, 2.0)
    speech[rate // 2] = bad
    broken = shot / "broken.wav"
    soundfile.write(broken, speech, rate, subtype="FLOAT")
    inputs = _contents(shot)

    code, stdout, err = _run(["dub", str(shot / "plate.mpg"), str(broken), "-o", str(tmp_path / "out.mp4"), *CPU], capsys)
    assert code == 2 and "Traceback" not in err
    assert "broken.wav: the audio holds 1 samples that are not numbers (NaN or infinity), the first at 0.500 s" in err

    code, stdout, err = _run(["personalize", str(shot / "plate.mpg"), "--audio", str(broken),
                              "-o", str(tmp_path / "actor.safetensors"), *CPU], capsys)
    assert code == 2 and "Traceback" not in err
    assert "broken.wav: the audio holds" in err
    assert _contents(shot) == inputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]


# ------------------------------------------------------------------------------------------ faces


@pytest.fixture
def two_faces(shared_data, tmp_path) -> Path:
    """Two speakers side by side: a 720x288 PNG sequence, frames 1-8."""
    pattern = tmp_path / "pair" / "pair.####.png"
    pattern.parent.mkdir()
    with open_plate(shared_data / CLIP, frames=(0, 7)) as left, open_plate(shared_data / OTHER_CLIP, frames=(0, 7)) as right, \
            open_writer(pattern, fps=25, width=720, height=288) as out:
        for a, b in zip(left, right):
            out.write(np.hstack([a.image, b.image]), a.number + 1)
    return pattern


def test_two_faces_the_render_names_them_and_says_how_to_choose(shared_data, two_faces, tmp_path, capsys):
    out = tmp_path / "out" / "dub.####.png"
    code, stdout, _ = _run(["dub", str(two_faces), str(shared_data / OTHER_CLIP), "-o", str(out), *CPU], capsys)
    assert code == 0
    note = next(line for line in stdout.splitlines() if line.startswith("2 faces in the shot"))
    assert "face 0: about" in note and "face 1: about" in note and "on 8 frames" in note
    assert "dubbing face 0; choose another with --face N" in note

    other = tmp_path / "out" / "face1.####.png"
    code, stdout, _ = _run(["dub", str(two_faces), str(shared_data / OTHER_CLIP), "-o", str(other), "--face", "1", *CPU],
                           capsys)
    assert code == 0 and "dubbing face 1;" in stdout


def test_a_negative_face_in_the_sidecar_is_explained(shared_data, shot, tmp_path, capsys):
    sidecar = shot / "plate.mpg.lipsync.json"
    sidecar.write_text(json.dumps({"version": 1, "source": "plate.mpg", "face": -1}))
    inputs = _contents(shot)
    code, _, err = _run(["dub", str(shot / "plate.mpg"), str(shared_data / OTHER_CLIP), "-o", str(tmp_path / "o.mp4"),
                         *CPU], capsys)
    assert code == 2 and "None" not in err
    assert "plate.mpg.lipsync.json: face is -1: must be at least 0 (0 is the largest face; " \
           "`lipsync analyze PLATE` lists the faces found)" in err
    assert _contents(shot) == inputs


# ------------------------------------------------------------------------------------------ timing

VFR_CLIP = "av/OpenTalker_examples_face_1.mp4"  # frames 1/30 s or 1/15 s apart: 135 frames over 6.1 s


def test_a_variable_rate_plate_is_reported_by_probe_and_the_dub_says_how_the_output_is_retimed(shared_data, tmp_path, capsys):
    plate = tmp_path / "vfr.mp4"
    shutil.copy(shared_data / VFR_CLIP, plate)
    code, stdout, _ = _run(["probe", str(plate)], capsys)
    assert code == 0 and "warning: variable frame rate: 15.000-30.000 fps, 22.131 on average, 30.000 nominal" in stdout

    out = tmp_path / "out" / "dub.####.png"
    code, stdout, _ = _run(["dub", str(plate), str(shared_data / OTHER_CLIP), "-o", str(out), "--frames", "0-2", *CPU],
                           capsys)
    assert code == 0
    note = next(line for line in stdout.splitlines() if "variable frame rate" in line)
    assert note.startswith(f"{plate}: variable frame rate (15-30 fps, 22.1 on average): the output plays its 135 frames "
                           "at a constant 30 fps (4.50 s for the plate's 6.10 s), so the picture drifts up to 1.")
    assert "conform the plate to a constant rate first" in note


# ------------------------------------------------------------------------------------------ caches


def _write_video(path: Path, images: list[np.ndarray]) -> None:
    with open_writer(path, fps=25, width=images[0].shape[1], height=images[0].shape[0]) as out:
        for image in images:
            out.write(image)


def test_a_plate_replaced_under_the_same_name_is_tracked_again_and_the_render_says_so(shared_data, tmp_path, capsys):
    with open_plate(shared_data / CLIP, frames=(0, 19)) as source:
        images = [frame.image for frame in source]
    folder = tmp_path / "shot"
    folder.mkdir()
    plate, cache = folder / "plate.mp4", folder / "plate.mp4.lipsync.track.npz"
    _write_video(plate, images)
    dub_audio = str(shared_data / OTHER_CLIP)
    code, stdout, _ = _run(["dub", str(plate), dub_audio, "-o", str(tmp_path / "a.####.png"), "--frames", "0-1", *CPU], capsys)
    assert code == 0 and "face track not used" not in stdout
    before = Track.load(cache).face(0).landmarks[:, :, 0].mean()

    # Another take under the same name, with the old file's modification time: the face now on the other side.
    stat = plate.stat()
    _write_video(plate, [image[:, ::-1] for image in images])
    os.utime(plate, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, stdout, _ = _run(["dub", str(plate), dub_audio, "-o", str(tmp_path / "b.####.png"), "--frames", "0-1", *CPU], capsys)
    assert code == 0
    assert f"{cache}: face track not used (the plate has changed since it was made): tracked again" in stdout
    after = Track.load(cache).face(0).landmarks[:, :, 0].mean()
    assert after == pytest.approx(360 - before, abs=4), "the face track is still the old plate's"

    code, stdout, _ = _run(["analyze", str(plate), "--no-preview"], capsys)
    assert code == 0 and "(from the cache)" in stdout  # the new track is the plate's now: no third tracking


# ------------------------------------------------------------------------------------------ pictures


def _encode(path: Path, images: list[np.ndarray], pix_fmt: str = "yuv420p", rotation: int = 0) -> None:
    """An H.264 file of `images` (uint8 or uint16 RGB); `rotation`: FFmpeg display-matrix degrees (counter-clockwise),
    as a phone writes it for a portrait clip (-90)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _source_images(shared_data: Path, count: int) -> list[np.ndarray]:
    with open_plate(shared_data / CLIP, frames=(0, count - 1)) as source:
        return [frame.image for frame in source]


def test_a_portrait_phone_clip_is_probed_dubbed_upright_and_written_the_way_it_plays(shared_data, tmp_path, capsys):
    stored = _source_images(shared_data, 8)
    plate = tmp_path / "phone" / "portrait.mp4"
    plate.parent.mkdir()
    # Stored sideways (the face lies on its side), played upright: what a phone held upright writes.
    _encode(plate, [np.ascontiguousarray(np.rot90(image)) for image in stored], rotation=-90)
    inputs = _contents(plate.parent)

    code, stdout, _ = _run(["probe", str(plate)], capsys)
    assert code == 0 and "rotation    90 degrees clockwise on playback" in stdout and "360x288" in stdout
    code, stdout, _ = _run(["probe", str(plate), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["rotation"] == 90

    (tmp_path / "out").mkdir()
    for out in (tmp_path / "out" / "dub.mp4", tmp_path / "out" / "dub.####.png"):
        code, stdout, _ = _run(["dub", str(plate), str(shared_data / OTHER_CLIP), "-o", str(out), *CPU], capsys)
        assert code == 0 and "dubbed 8 of 8 frames" in stdout  # tracked on the upright picture: a face on every frame
        with open_plate(out) as result:
            assert (result.info.width, result.info.height, result.info.rotation) == (360, 288, 0)
            first = next(iter(result)).image
        # Upright, as the plate plays: the untouched top of the picture is the source's top.
        top = np.abs(first[:60].astype(int) - stored[0][:60].astype(int)).mean()
        assert top < 4, f"{out.name} is not written upright"
    after = _contents(plate.parent)
    assert {name: after[name] for name in inputs} == inputs and set(after) - set(inputs) == {"portrait.mp4.lipsync.track.npz"}


def test_a_10_bit_plate_keeps_its_precision_in_16_bit_and_float_outputs(shared_data, tmp_path, capsys):
    # 16-bit pictures with detail below the eighth bit: the real clip plus a gentle ramp.
    ramp = np.linspace(0, 255, 360, dtype=np.float64)[None, :, None]
    images = [np.clip(image.astype(np.float64) * 257 + ramp, 0, 65535).astype(np.uint16)
              for image in _source_images(shared_data, 8)]
    plate = tmp_path / "deep" / "plate10.mp4"
    plate.parent.mkdir()
    _encode(plate, images, pix_fmt="yuv420p10le")
    inputs = _contents(plate.parent)
    with open_plate(plate) as source:
        assert source.info.dtype == "uint16"
        decoded = {frame.number: frame.image for frame in source}
    assert len(np.unique(decoded[0][..., 1])) > 256  # more levels than 8 bits hold

    png, exr = tmp_path / "out" / "dub.####.png", tmp_path / "out" / "dub.####.exr"
    for out in (png, exr):
        code, _, _ = _run(["dub", str(plate), str(shared_data / OTHER_CLIP), "-o", str(out), *CPU], capsys)
        assert code == 0
    for number, image in decoded.items():
        written = read_image(tmp_path / "out" / f"dub.{number:04d}.png")
        linear = read_image(tmp_path / "out" / f"dub.{number:04d}.exr")
        with OpenEXR.File(str(tmp_path / "out" / f"dub.{number:04d}.exr")) as file:
            outside = file.channels()[MASK_LAYER].pixels == 0
        assert written.dtype == np.uint16 and linear.dtype == np.float32
        assert outside.mean() > 0.5 and (outside == 0).any()
        assert np.array_equal(written[outside], image[outside]), f"frame {number}: untouched pixels lost precision"
        assert np.array_equal(linear[outside], srgb_decode(to_display(image))[outside])
    assert {name: digest for name, digest in _contents(plate.parent).items() if name in inputs} == inputs


def test_prores_output_has_no_grey_streaks_at_the_left_edge(shared_data, tmp_path):
    images = _source_images(shared_data, 12)  # 360x288: swscale's slice boundaries fall on rows 96 and 192
    out = tmp_path / "clip.mov"
    with open_writer(out, fps=25, width=360, height=288) as writer:
        for image in images:
            writer.write(image)
    with open_plate(out) as result:
        decoded = [frame.image for frame in result]
    for number, (image, back) in enumerate(zip(images, decoded)):
        assert back.dtype == np.uint16  # ProRes 4444 is 10-bit: read back at 16 bits
        error = np.abs(back / 257 - image).max(axis=2)
        # The smallest error in each 8x1 block: ProRes 4444 keeps it to a few levels; a streak makes a whole block wrong.
        blocks = error[:, :360].reshape(288, 45, 8).min(axis=2)
        assert blocks.max() <= 8, f"frame {number}: a streak at {np.argwhere(blocks > 8)[:4].tolist()} (row, block)"
