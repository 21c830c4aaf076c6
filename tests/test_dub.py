"""`lipsync dub` on real clips: what a compositor checks in the result.

A tiny random-weight model stands in for a trained one: it draws nonsense inside the mask, which is
all these tests need (inside the mask the picture changes; outside it must not, to the bit). The
plate is a 3 s GRID clip copied into a temporary folder, so its track is computed once and reused
from the cache beside it, as a user's second render would.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import OpenEXR
import pytest

from lipsync_core.cli import main as cli_main
from lipsync_core.dub.outputs import MASK_LAYER
from lipsync_core.dub.pipeline import BYPASSED, NO_FACE, Cancelled, dub
from lipsync_core.face.track import Track
from lipsync_core.media.audio import SAMPLE_RATE, load_audio
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_exr_header, read_image, read_png_text
from lipsync_core.media.writers import open_writer
from lipsync_core.models.checkpoint import save_checkpoint
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.provenance.verify import verify
from lipsync_core.shot import Shot

from dub_fixtures import TINY, dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)

# H.264/AAC put the audio within a frame of where it belongs; the media layer's own tests hold it to that.
ONE_FRAME_S = 1 / 25


def _images(path, frames=None) -> dict[int, np.ndarray]:
    with open_plate(path, frames=frames) as source:
        return {f.number: f.image for f in source}


def _plate_masks(plate_path: Path, numbers) -> dict[int, np.ndarray]:
    """The blend masks of the main face from the cached track (what the render used)."""
    track = Track.load(Shot.for_plate(plate_path).track_path())
    face = track.face(0)
    return {n: face.mask(track.index(n), (track.height, track.width)) for n in numbers}


def _dilated(mask: np.ndarray, pixels: int = 3) -> np.ndarray:
    """Where the result may differ: the mask's support grown by a few pixels of interpolation."""
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate((mask > 0).astype(np.uint8), kernel) > 0


def _assert_only_mask_changed(original: np.ndarray, result: np.ndarray, mask: np.ndarray, number: int) -> None:
    outside = ~_dilated(mask)
    assert np.array_equal(original[outside], result[outside]), f"frame {number}: pixels outside the mask changed"
    inside = mask > 0.5
    change = np.abs(original[inside].astype(np.float64) - result[inside].astype(np.float64)).mean()
    assert change > 0.01 * (255 if original.dtype == np.uint8 else 1), f"frame {number}: the face was not redrawn"


# ---------------------------------------------------------------------------------------- results


def test_png_sequence_matches_plate_outside_mask_and_is_redrawn_inside(plate, dub_audio, tiny_model, tmp_path):
    out = tmp_path / "out.####.png"
    report = dub(plate, dub_audio, out, frames=(20, 31), model=tiny_model, device="cpu", batch=4)

    written = _images(out)
    assert sorted(written) == list(range(20, 32)) == report.dubbed
    original = _images(plate, (20, 31))
    masks = _plate_masks(plate, written)
    for number, image in written.items():
        assert image.shape == original[number].shape and image.dtype == np.uint8
        _assert_only_mask_changed(original[number], image, masks[number], number)


def test_mp4_has_the_plates_frames_size_rate_and_the_dub_audio_in_sync(plate, dub_audio, tiny_model, tmp_path):
    out = tmp_path / "out.mp4"
    # The dub starts 5 frames into the shot; the render starts 10 frames in: 5 frames of dub already gone.
    offset_frames, first, last = 5, 10, 49
    report = dub(plate, dub_audio, out, frames=(first, last), audio_offset=f"{offset_frames}f", model=tiny_model, device="cpu")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]

    with open_plate(plate) as source, open_plate(out) as result:
        assert (result.info.frame_count, result.info.width, result.info.height) == (
            last - first + 1, source.info.width, source.info.height,
        )
        assert result.info.fps == pytest.approx(source.info.fps)
    assert report.dubbed == list(range(first, last + 1))
    assert "longer than the range: trimmed" in report.audio

    heard = load_audio(out)
    lag, correlation = _best_lag(heard, load_audio(dub_audio))
    assert correlation > 0.9, "the output's audio is not the dub"
    assert abs(lag - (offset_frames - first) / 25) <= ONE_FRAME_S


def _best_lag(heard: np.ndarray, source: np.ndarray) -> tuple[float, float]:
    """Seconds by which `source` is delayed in `heard`, and the normalised correlation there."""
    n = len(heard) + len(source)
    spectrum = np.fft.rfft(heard, n) * np.conj(np.fft.rfft(source, n))
    correlation = np.fft.irfft(spectrum, n)
    lag = int(np.argmax(correlation))
    if lag > n // 2:
        lag -= n
    shifted = source[max(0, -lag) :][: len(heard) - max(0, lag)]
    overlap = heard[max(0, lag) : max(0, lag) + len(shifted)]
    score = float(np.dot(overlap, shifted) / (np.linalg.norm(overlap) * np.linalg.norm(shifted) + 1e-9))
    return lag / SAMPLE_RATE, score


@pytest.fixture(scope="module")
def exr_plate(plate, tmp_path_factory) -> Path:
    """A 1001-based half-float linear EXR sequence made from the real clip, with a header attribute
    a compositor expects to survive (here: an owner and a comment)."""
    folder = tmp_path_factory.mktemp("exr")
    pattern = folder / "plate.####.exr"
    header = {"owner": "lipsync tests", "comments": "shot 010"}
    with open_writer(pattern, fps=25, width=360, height=288, inputs=[plate], header=header) as out:
        for number, image in _images(plate, (0, 15)).items():
            out.write(srgb_decode(to_display(image)).astype(np.float16), number + 1001)
    return pattern


def test_float_exr_plate_keeps_every_bit_outside_mask_and_carries_mask_layer_and_header(exr_plate, dub_audio, tiny_model, tmp_path):
    out = tmp_path / "dubbed.####.exr"
    report = dub(exr_plate, dub_audio, out, frames=(1004, 1011), model=tiny_model, device="cpu", batch=4)
    assert report.dubbed == list(range(1004, 1012))

    for number in report.dubbed:
        source = read_image(exr_plate.parent / f"plate.{number}.exr")
        path = tmp_path / f"dubbed.{number}.exr"
        result = read_image(path)
        assert result.dtype == np.float16 and result.shape == source.shape
        with OpenEXR.File(str(path)) as exr:
            mask = exr.channels()[MASK_LAYER].pixels.astype(np.float32)
        assert mask.max() == pytest.approx(1.0, abs=1e-3)
        _assert_only_mask_changed(source, result, mask, number)
        header = read_exr_header(path)
        assert header["owner"] == "lipsync tests" and header["comments"] == "shot 010"


def test_prores_carries_the_mask_as_alpha(plate, dub_audio, tiny_model, tmp_path):
    out = tmp_path / "out.mov"
    dub(plate, dub_audio, out, frames=(40, 43), model=tiny_model, device="cpu", batch=4)
    masks = _plate_masks(plate, range(40, 44))
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgba64le") for f in container.decode(video=0)]
    assert len(frames) == 4
    for number, frame in zip(range(40, 44), frames):
        wrong = np.abs(frame[..., 3] / 65535.0 - masks[number]) > 0.01
        # FFmpeg's ProRes 4444 round trip (prores_ks) now and then garbles the alpha of the first 8
        # pixels of a slice row (seen with any alpha, on busy pictures): allow those few, not more.
        assert wrong.sum() <= 32, f"frame {number}: alpha differs from the mask in {wrong.sum()} pixels"


# ------------------------------------------------------------------------------ pass-through frames


@pytest.fixture(scope="module")
def sequence_with_gaps(plate, tmp_path_factory) -> tuple[Path, range]:
    """A PNG sequence 1001-1020 of the real clip where frames 1005-1007 show only the background
    (a cut to an empty frame: no face)."""
    folder = tmp_path_factory.mktemp("gaps")
    pattern = folder / "plate.####.png"
    images = _images(plate, (0, 19))
    background = np.zeros_like(images[0]) + images[0][:20, :20].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    empty = range(1005, 1008)
    with open_writer(pattern, fps=25, width=360, height=288, inputs=[plate]) as out:
        for number, image in images.items():
            out.write(background if number + 1001 in empty else image, number + 1001)
    return pattern, empty


def test_faceless_and_bypassed_frames_pass_through_bit_exactly_and_are_listed(sequence_with_gaps, dub_audio, tiny_model, tmp_path):
    pattern, empty = sequence_with_gaps
    shot = Shot.for_plate(pattern)
    shot.bypass = [(1012, 1013)]
    shot.save()
    out = tmp_path / "out.####.png"
    report = dub(pattern, dub_audio, out, model=tiny_model, device="cpu", batch=4)

    assert report.passed[NO_FACE] == list(empty)
    assert report.passed[BYPASSED] == [1012, 1013]
    assert len(report.dubbed) == 20 - 3 - 2
    lines = "\n".join(report.lines())
    assert "no face in frames 1005-1007 (passed through)" in lines
    assert "bypassed in the shot in frames 1012-1013 (passed through)" in lines
    for number in [*empty, 1012, 1013]:
        assert np.array_equal(read_image(tmp_path / f"out.{number}.png"), read_image(pattern.parent / f"plate.{number}.png"))
    for number in (1004, 1008, 1011, 1014):
        assert not np.array_equal(read_image(tmp_path / f"out.{number}.png"), read_image(pattern.parent / f"plate.{number}.png"))


def test_a_shot_with_no_face_at_all_passes_through_whole(plate, dub_audio, tiny_model, tmp_path):
    background = _images(plate, (0, 0))[0][:40, :40]  # a corner of the studio wall, no one in it
    pattern = tmp_path / "empty.####.png"
    with open_writer(pattern, fps=25, width=40, height=40) as out:
        for number in range(1, 5):
            out.write(background, number)
    report = dub(pattern, dub_audio, tmp_path / "out.####.png", model=tiny_model, device="cpu")
    assert report.dubbed == [] and report.passed[NO_FACE] == [1, 2, 3, 4]
    for number in range(1, 5):
        result = tmp_path / f"out.{number:04d}.png"
        assert np.array_equal(read_image(result), read_image(tmp_path / f"empty.{number:04d}.png"))
        assert read_png_text(result)["lipsync.dubbed"] == "no (passed through)"  # the frame still says where it has been


# ------------------------------------------------------------------------- chunks, resume, cancel


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_chunks_and_a_resumed_render_equal_a_full_render(plate, dub_audio, tiny_model, tmp_path):
    common = dict(model=tiny_model, device="cpu", batch=4)
    full, chunks, resumed = (tmp_path / name for name in ("full", "chunks", "resumed"))
    for folder in (full, chunks, resumed):
        folder.mkdir()
    dub(plate, dub_audio, full / "o.####.png", frames=(10, 21), **common)

    # A farm splits the shot at frames that do not fall on the model's batches.
    dub(plate, dub_audio, chunks / "o.####.png", frames=(10, 14), **common)
    dub(plate, dub_audio, chunks / "o.####.png", frames=(15, 21), **common)
    assert _files(chunks) == _files(full)

    # Interrupted after 5 frames: whole frames only, then --resume finishes the same files.
    stop = threading.Event()

    def progress(stage, done, total):
        if stage == "render" and done == 5:
            stop.set()

    with pytest.raises(Cancelled):
        dub(plate, dub_audio, resumed / "o.####.png", frames=(10, 21), progress=progress, cancel=stop, **common)
    # Beside them, hidden: the record of the settings they were rendered with.
    assert sorted(p.name for p in resumed.iterdir()) == [".o.####.png.render.json"] + [f"o.{n:04d}.png" for n in range(10, 15)]
    report = dub(plate, dub_audio, resumed / "o.####.png", frames=(10, 21), resume=True, **common)
    assert report.resumed_from == 15 and report.dubbed == list(range(15, 22))
    assert _files(resumed) == _files(full)


def test_cancelled_video_leaves_nothing(plate, dub_audio, tiny_model, tmp_path):
    calls = []
    with pytest.raises(Cancelled):
        dub(plate, dub_audio, tmp_path / "out.mp4", frames=(0, 19), model=tiny_model, device="cpu",
            progress=lambda stage, done, total: stage == "render" and calls.append(done), cancel=lambda: len(calls) >= 10)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- bad inputs


def _cli_error(argv, capsys) -> str:
    assert cli_main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_are_named_and_nothing_is_written(plate, exr_plate, dub_audio, tiny_model, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = str(out_dir / "out.mp4")
    model = ["--model", str(tiny_model), "--device", "cpu"]

    err = _cli_error(["dub", str(plate), str(tmp_path / "missing.wav"), "-o", out, *model], capsys)
    assert "missing.wav: file not found" in err

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    err = _cli_error(["dub", str(broken), str(dub_audio), "-o", out, *model], capsys)
    assert "broken.mp4: cannot be read as video" in err

    err = _cli_error(["dub", str(plate), str(dub_audio), "-o", out, "--frames", "70-90", *model], capsys)
    assert "frame range 70-90 is outside the plate, which holds frames 0-74" in err

    syncnet_only = tmp_path / "syncnet.safetensors"
    save_checkpoint(syncnet_only, {"syncnet": SyncNet(TINY)}, TINY)
    err = _cli_error(["dub", str(plate), str(dub_audio), "-o", out, "--model", str(syncnet_only), "--device", "cpu"], capsys)
    assert "has no weights for 'generator'" in err

    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04not really")
    err = _cli_error(["dub", str(plate), str(dub_audio), "-o", out, "--model", str(pickled), "--device", "cpu"], capsys)
    assert "must be .safetensors" in err

    err = _cli_error(["dub", str(exr_plate), str(dub_audio), "-o", str(exr_plate), *model], capsys)
    assert "refusing to write over the input" in err

    err = _cli_error(["dub", str(plate), str(dub_audio), "-o", str(out_dir / "out.avi"), *model], capsys)
    assert "unknown output type '.avi'" in err

    assert list(out_dir.iterdir()) == []


# ------------------------------------------------------------------------------- batch and demo


def test_batch_renders_in_order_reports_each_shot_and_fails_without_stopping(plate, dub_audio, tiny_model, tmp_path, capsys):
    (tmp_path / "renders").mkdir()
    (tmp_path / "renders" / "old.mp4").write_bytes(b"rendered yesterday")
    rows = [
        "plate,audio,frames,output,model",
        f"{plate},{dub_audio},30-33,renders/a.####.png,{tiny_model}",
        f"{plate},{tmp_path / 'no_such_dub.wav'},30-33,renders/b.####.png,{tiny_model}",
        f"{plate},{dub_audio},,renders/old.mp4,{tiny_model}",
        f"{plate},{dub_audio},34-35,renders/c.####.png,{tiny_model}",
    ]
    shot_list = tmp_path / "shots.csv"
    shot_list.write_text("\n".join(rows) + "\n")

    assert cli_main(["batch", str(shot_list), "--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    summary = printed[printed.index("#  shot"):].splitlines()
    assert [line.split()[3] for line in summary[1:5]] == ["done", "failed", "skipped", "done"]
    assert "no_such_dub.wav: file not found" in summary[2]
    assert "old.mp4 exists" in summary[3]
    assert summary[-1] == "2 done, 1 skipped, 1 failed"
    assert sorted(p.name for p in (tmp_path / "renders").iterdir() if not p.name.startswith(".")) == [
        "a.0030.png", "a.0031.png", "a.0032.png", "a.0033.png", "c.0034.png", "c.0035.png", "old.mp4",
    ]


def test_demo_writes_the_dubbed_video_and_the_side_by_side(tiny_model, tmp_path, capsys):
    assert cli_main(["demo", "-o", str(tmp_path), "--model", str(tiny_model), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    dubbed, side_by_side = tmp_path / "demo_dubbed.mp4", tmp_path / "demo_side_by_side.mp4"
    assert str(dubbed) in printed and str(side_by_side) in printed
    with open_plate(dubbed) as a, open_plate(side_by_side) as b:
        assert b.info.frame_count == a.info.frame_count == 75
        assert (b.info.width, b.info.height) == (2 * a.info.width + 24, a.info.height)  # 24: the dubbed half at x=384
        assert b.info.audio and a.info.audio
    # The comparison is a dub output too: signed with the dub's claims, and its dubbed half still carries the mark.
    for video in (dubbed, side_by_side):
        result = verify(video)
        assert result.credentials.valid and result.credentials.dub == verify(dubbed).credentials.dub, video
        mark = result.mark
        assert mark.found and hashlib.sha256(tiny_model.read_bytes()).hexdigest().startswith(mark.model_prefix), video
