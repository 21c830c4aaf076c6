"""The media layer on real footage (shared/data) and on small files the tests make themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest

from lipsync_core.cli import main as cli_main
from lipsync_core.errors import MediaError
from lipsync_core.media.audio import (
    MEL_FPS,
    MEL_SILENCE,
    SAMPLE_RATE,
    audio_for_range,
    load_audio,
    log_mel,
    mel_windows,
)
from lipsync_core.media.colour import composite, from_display, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_exr_header
from lipsync_core.media.writers import open_writer

VFR_CLIP = "av/OpenTalker_examples_face_1.mp4"
GRID_CLIP = "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg"
NTSC_CLIP = "av/astorfi_data_sample_video.mp4"  # 29.97 fps, B-frames, an edit list that hides 57 packets
HEVC_CLIP = "assets/bytedance_assets_demo1_video.mp4"
HAMILTON_CLIP = "assets/ageitgey_examples_short_hamilton_clip.mp4"  # its video starts 0.852 s into the file
SILENT_CLIP = "av/FuxiVirtualH_samples_source_video_video_Obama_clip1.mp4"  # no audio stream
TRUNCATED_CLIP = "video/jixinya_test_video_sad.mp4"  # its index lists 157 frames, its data holds 110
# README: "Audio and video lengths of the same clip differ ... by up to ~0.1 s (1-3 frames) in av/".
AUDIO_VIDEO_TOLERANCE_S = 0.1


def _video_rows(manifest):
    return [row for row in manifest if row["file"].endswith((".mp4", ".mpg"))]


def _container_video_duration(path: Path) -> float:
    """The video stream's duration as the container states it (independent of open_plate)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration:
            return float(stream.duration * stream.time_base)
        return container.duration / 1e6


# ------------------------------------------------------------------------------------ real clips


def test_every_clip_opens_and_its_frame_count_agrees_with_the_container(shared_data, manifest):
    problems = []
    for row in _video_rows(manifest):
        path = shared_data / row["file"]
        with open_plate(path) as plate:
            info = plate.info
        if row["file"] == TRUNCATED_CLIP:
            assert any("truncated" in note for note in info.warnings)
            continue
        rate = info.source_fps if info.variable_fps else info.fps
        off_by = abs(info.frame_count / rate - _container_video_duration(path)) * rate
        if off_by > 1.0:
            problems.append(f"{row['file']}: {info.frame_count} frames at {rate:.3f} fps is {off_by:.2f} frames off")
        if abs(rate - float(row["fps"])) > 0.01:
            problems.append(f"{row['file']}: {rate:.3f} fps, manifest says {row['fps']}")
        if f"{info.width}x{info.height}" != row["resolution"]:
            problems.append(f"{row['file']}: {info.width}x{info.height}, manifest says {row['resolution']}")
        # The first and the last frame decode (the last through a seek), as RGB uint8 of the stated size.
        for number in (info.first, info.last):
            frames = list(open_plate(path, frames=(number, number)))
            if [f.number for f in frames] != [number] or frames[0].image.shape != (info.height, info.width, 3):
                problems.append(f"{row['file']}: frame {number} did not decode")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("clip", [GRID_CLIP, NTSC_CLIP, HEVC_CLIP, VFR_CLIP])
def test_full_decode_yields_every_frame_in_order(shared_data, clip):
    with open_plate(shared_data / clip) as plate:
        frames = [(frame.number, frame.time) for frame in plate]
    assert [n for n, _ in frames] == list(range(plate.info.frame_count))
    times = np.array([t for _, t in frames])
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)


@pytest.mark.parametrize("clip", [GRID_CLIP, NTSC_CLIP])
def test_a_frame_range_gives_the_same_pictures_as_decoding_from_the_start(shared_data, clip):
    # MPEG program streams seek imprecisely, H.264 with B-frames reorders: both must land exactly.
    path = shared_data / clip
    whole = {frame.number: frame.image for frame in open_plate(path, frames=(0, 60))}
    part = list(open_plate(path, frames=(50, 60)))
    assert [f.number for f in part] == list(range(50, 61))
    assert all(np.array_equal(whole[f.number], f.image) for f in part)


@pytest.mark.parametrize("clip", [GRID_CLIP, NTSC_CLIP])
def test_chosen_frames_are_the_same_pictures_as_in_the_whole_range(shared_data, clip):
    # The appearance stage reads a few source frames scattered over a shot: the frames between are decoded but
    # not converted, and a late first frame seeks.
    path = shared_data / clip
    whole = {frame.number: frame.image for frame in open_plate(path, frames=(0, 70))}
    chosen = [5, 6, 6, 40, 70, 12]
    plate = open_plate(path, frames=(0, 70), only=chosen)
    frames = list(plate)
    assert len(plate) == 5 and [f.number for f in frames] == [5, 6, 12, 40, 70]
    assert all(np.array_equal(whole[f.number], f.image) for f in frames)
    late = list(open_plate(path, frames=(0, 70), only=[55, 61]))
    assert [f.number for f in late] == [55, 61] and all(np.array_equal(whole[f.number], f.image) for f in late)
    assert list(open_plate(path, frames=(0, 70), only=[])) == []


def test_audio_length_agrees_with_video_length(shared_data, manifest):
    problems, checked = [], 0
    for row in _video_rows(manifest):
        if row["kind"] != "av":
            continue
        path = shared_data / row["file"]
        info = open_plate(path).info
        if info.audio:
            audio = load_audio(path, offset_s=info.start_time)
        elif row["paired_audio"]:
            audio = load_audio(shared_data / row["paired_audio"])
        else:
            continue
        checked += 1
        difference = len(audio) / SAMPLE_RATE - info.duration
        if abs(difference) > AUDIO_VIDEO_TOLERANCE_S:
            problems.append(f"{row['file']}: audio is {difference:+.3f} s against the video")
    assert checked >= 50
    assert not problems, "\n".join(problems)


def test_hamilton_audio_lines_up_once_the_late_video_start_is_honoured(shared_data):
    # README: audio and video of this clip differ by 0.8 s. The container says why: the first
    # picture sits at 0.852 s. Measured from that picture, audio and video end together.
    path = shared_data / HAMILTON_CLIP
    info = open_plate(path).info
    assert info.start_time == pytest.approx(0.852, abs=0.001)
    whole_file_audio = len(load_audio(path)) / SAMPLE_RATE
    assert whole_file_audio - info.duration == pytest.approx(0.84, abs=0.02)
    aligned = len(load_audio(path, offset_s=info.start_time)) / SAMPLE_RATE
    assert abs(aligned - info.duration) < 1.0 / info.fps


def test_variable_rate_clip_is_detected_and_conformed_by_timestamp(shared_data):
    path = shared_data / VFR_CLIP
    source = open_plate(path)
    assert source.info.variable_fps and source.info.fps == pytest.approx(30.0)
    assert source.info.source_fps == pytest.approx(22.131, abs=0.01)
    assert not open_plate(shared_data / NTSC_CLIP).info.variable_fps

    conformed = open_plate(path, conform_fps=30)
    assert conformed.info.conformed and conformed.info.fps == 30
    assert len(conformed) == round(source.info.duration * 30)
    originals = [(frame.time, frame.image) for frame in source]
    source_times = np.array([t for t, _ in originals])
    for frame in conformed:
        assert frame.time == pytest.approx(frame.number / 30)
        distance = np.abs(source_times - frame.time)
        nearest = int(np.flatnonzero(distance <= distance.min() + 1e-6)[0])  # ties: the earlier frame
        assert np.array_equal(frame.image, originals[nearest][1]), f"conformed frame {frame.number}"


def test_flv_with_h264_opens(tmp_path):
    path = tmp_path / "clip.flv"
    with av.open(str(path), "w", format="flv") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    plate = open_plate(path)
    assert (plate.info.container, plate.info.frame_count, plate.info.fps) == ("flv", 10, 25.0)
    assert len([frame for frame in plate]) == 10


# --------------------------------------------------------------------------------------- errors


def test_missing_unreadable_and_truncated_inputs_name_the_file(shared_data, tmp_path):
    with pytest.raises(MediaError, match="nothing.mp4: file not found"):
        open_plate(tmp_path / "nothing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError, match="garbage.mp4: cannot be read as video"):
        open_plate(garbage)
    # Cut in half, a file whose index comes last loses its index: it cannot be opened.
    source = shared_data / "av/AP0827_test_set_sample1.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(MediaError, match="cut.mp4"):
        open_plate(cut)
    # A file whose index comes first opens with what is present, and says it is truncated.
    truncated = open_plate(shared_data / TRUNCATED_CLIP)
    assert truncated.info.frame_count == 110
    assert truncated.info.warnings and "157 frames but only 110" in truncated.info.warnings[0]


@pytest.mark.parametrize("command", ["probe", "dub-plate", "dub-audio", "verify"])
def test_a_folder_or_an_empty_file_given_as_media_is_named_as_such(shared_data, tmp_path, capsys, command):
    empty, folder = tmp_path / "empty.mp4", tmp_path / "takes.mov"
    empty.touch()
    folder.mkdir()
    for given, said in ((empty, "is empty (0 bytes)"), (folder, "is a folder, not a file")):
        argv = {"probe": ["probe", str(given)], "verify": ["verify", str(given)],
                "dub-plate": ["dub", str(given), str(shared_data / GRID_CLIP), "-o", str(tmp_path / "out.mp4")],
                "dub-audio": ["dub", str(shared_data / GRID_CLIP), str(given), "-o", str(tmp_path / "out.mp4")]}[command]
        assert cli_main(argv) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"{given}: {said}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "takes.mov"]  # nothing written


def test_audio_less_video_says_so(shared_data):
    with pytest.raises(MediaError, match=r"Obama_clip1.mp4: has no audio stream"):
        load_audio(shared_data / SILENT_CLIP)


def test_frame_range_outside_the_plate_is_refused(shared_data):
    with pytest.raises(MediaError, match=r"GRID_bbaf2n.mpg: frame range 70-80 is outside the plate, which holds frames 0-74"):
        open_plate(shared_data / GRID_CLIP, frames=(70, 80))


# ------------------------------------------------------------------------------ image sequences


def _exr_plate(rng, dtype, height=24, width=32) -> np.ndarray:
    image = (rng.standard_normal((height, width, 4)) * 4).astype(dtype)
    image[0, 0, :3] = [np.inf, -np.inf, np.nan]  # what a linear plate can hold must survive too
    return image


@pytest.mark.parametrize("pixel_type, dtype", [("half", np.float16), ("float", np.float32)])
def test_exr_rgba_sequence_round_trips_bit_exact_with_mask_layer_and_header(tmp_path, pixel_type, dtype):
    rng = np.random.default_rng(1)
    source_header = {"owner": "plate dept", "comments": "shot 010_0020"}
    images = {n: _exr_plate(rng, dtype) for n in (1001, 1002, 1003)}
    mask = rng.random((24, 32)).astype(np.float32)
    pattern = tmp_path / "plate.####.exr"
    with open_writer(pattern, fps=25, width=32, height=24, pixel_type=pixel_type, header=source_header) as out:
        for number, image in images.items():
            out.write(image, number, layers={"lipsync.mask": mask})

    plate = open_plate(pattern)
    assert (plate.info.first, plate.info.last, plate.info.fps, plate.info.dtype) == (1001, 1003, 25.0, np.dtype(dtype).name)
    frames = list(plate)
    assert [f.number for f in frames] == [1001, 1002, 1003]
    assert [f.time for f in frames] == pytest.approx([0, 0.04, 0.08])
    bits = np.uint16 if dtype == np.float16 else np.uint32
    for frame in frames:
        assert frame.image.dtype == dtype
        assert np.array_equal(frame.image.view(bits), images[frame.number].view(bits))

    header = read_exr_header(tmp_path / "plate.1002.exr")
    assert header["owner"] == "plate dept" and header["comments"] == "shot 010_0020"
    with OpenEXR.File(str(tmp_path / "plate.1002.exr")) as exr:
        stored_mask = exr.channels()["lipsync.mask"].pixels
    assert np.array_equal(stored_mask, mask.astype(dtype))

    # One frame's name stands for its whole sequence; a range picks part of it.
    assert len(open_plate(tmp_path / "plate.1002.exr")) == 3
    assert [f.number for f in open_plate(pattern, frames=(1002, 1003))] == [1002, 1003]


def test_exr_written_from_a_strided_view_is_not_scrambled(tmp_path):
    # The OpenEXR bindings ignore numpy strides; the writer must hand them contiguous pixels.
    big = np.arange(24 * 64 * 4, dtype=np.float32).reshape(24, 64, 4)
    view = big[:, ::2]
    with open_writer(tmp_path / "v.####.exr", fps=24, width=32, height=24, pixel_type="float") as out:
        out.write(view, 1)
    assert np.array_equal(next(iter(open_plate(tmp_path / "v.0001.exr"))).image, view)


def test_chosen_frames_of_a_sequence_read_only_their_files(tmp_path):
    images = {n: np.full((4, 6, 3), n, np.uint16) for n in range(1, 6)}
    with open_writer(tmp_path / "s.####.png", fps=24, width=6, height=4) as out:
        for number, image in images.items():
            out.write(image, number)
    (tmp_path / "s.0003.png").write_bytes(b"damaged")  # not asked for: never read
    frames = list(open_plate(tmp_path / "s.####.png", only=[5, 2]))
    assert [f.number for f in frames] == [2, 5] and all(np.array_equal(f.image, images[f.number]) for f in frames)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_sequence_round_trips_exactly(tmp_path, dtype):
    rng = np.random.default_rng(2)
    top = np.iinfo(dtype).max
    images = {n: rng.integers(0, top + 1, (20, 30, 3), dtype=dtype) for n in range(7, 10)}
    with open_writer(tmp_path / "plate.%04d.png", fps=24, width=30, height=20) as out:
        for number, image in images.items():
            out.write(image, number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.0007.png", "plate.0008.png", "plate.0009.png"]
    for frame in open_plate(tmp_path / "plate.%04d.png"):
        assert frame.image.dtype == dtype and np.array_equal(frame.image, images[frame.number])


def test_sequence_gaps_and_damaged_frames_are_named(tmp_path):
    image = np.zeros((8, 8, 3), np.uint16)
    with open_writer(tmp_path / "s.####.png", fps=24, width=8, height=8) as out:
        for number in (1, 2, 3, 5, 6):
            out.write(image, number)
    with pytest.raises(MediaError, match="frames 4 are missing"):
        open_plate(tmp_path / "s.####.png")
    assert len(open_plate(tmp_path / "s.####.png", frames=(5, 6))) == 2
    damaged = tmp_path / "s.0006.png"
    damaged.write_bytes(damaged.read_bytes()[:40])
    with pytest.raises(MediaError, match="s.0006.png: cannot be read"):
        list(open_plate(tmp_path / "s.####.png", frames=(5, 6)))


def test_truncated_exr_is_named(tmp_path):
    with open_writer(tmp_path / "t.####.exr", fps=24, width=16, height=64) as out:
        out.write(np.ones((64, 16, 3), np.float16), 1)
    frame = tmp_path / "t.0001.exr"
    frame.write_bytes(frame.read_bytes()[:-200])
    with pytest.raises(MediaError, match="t.0001.exr: cannot be read as OpenEXR"):
        list(open_plate(frame))


# -------------------------------------------------------------------------------------- writers


def _onset_s(samples: np.ndarray, rate: int) -> float:
    return int(np.argmax(np.abs(samples) > 0.2)) / rate


def test_mp4_with_muxed_audio_keeps_sync(tmp_path):
    fps, rate, frames = 25, 48000, 75
    click_s = 1.3
    audio = np.zeros(int(rate * frames / fps), np.float32)
    audio[int(click_s * rate) : int(click_s * rate) + 96] = 0.8
    out_path = tmp_path / "dub.mp4"
    with open_writer(out_path, fps=fps, width=64, height=48, audio=audio, audio_rate=rate) as out:
        for i in range(frames):
            out.write(np.full((48, 64, 3), (i * 3) % 256, np.uint8))

    # AAC starts with encoder priming (the first packet's timestamp is negative); the mp4 edit list
    # sets the stream's start time so that decoders drop it. load_audio places sample 0 at the first
    # decoded sample's timestamp, so the priming is accounted for whatever the encoder chose.
    with av.open(str(out_path)) as container:
        stream = container.streams.audio[0]
        priming = -next(container.demux(stream)).pts
        start_time = float(stream.start_time * stream.time_base)
    plate = open_plate(out_path)
    assert plate.info.frame_count == frames and plate.info.fps == fps
    decoded = load_audio(out_path, offset_s=plate.info.start_time)
    offset_ms = (_onset_s(decoded, SAMPLE_RATE) - click_s) * 1000
    print(f"A/V offset {offset_ms:+.3f} ms; AAC priming {priming} samples; audio stream starts at {start_time * 1000:.3f} ms")
    assert priming >= 0
    assert abs(offset_ms) <= 1.0
    assert abs(len(decoded) / SAMPLE_RATE - frames / fps) < 0.03
    means = [float(frame.image.mean()) for frame in plate]
    assert np.allclose(means, [(i * 3) % 256 for i in range(frames)], atol=2)


def test_mp4_muxes_a_dub_file_at_its_own_rate(shared_data, tmp_path):
    dub = shared_data / "av/FuxiVirtualH_samples_source_video_video_Obama_clip1.wav"
    out_path = tmp_path / "dub.mp4"
    with open_writer(out_path, fps=30, width=32, height=32, audio=dub) as out:
        for _ in range(30):
            out.write(np.zeros((32, 32, 3), np.uint8))
    with av.open(str(out_path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.codec_context.sample_rate == 16000
    original = load_audio(dub)[: SAMPLE_RATE]
    muxed = load_audio(out_path)[: SAMPLE_RATE]
    # AAC is lossy; the waveform must still line up sample for sample.
    lag = int(np.argmax(np.correlate(muxed[4000:12000], original[3990:12010], "valid"))) - 10
    assert lag == 0


def test_prores_4444_keeps_alpha(tmp_path):
    height, width = 32, 48
    rgba = np.zeros((height, width, 4), np.uint16)
    rgba[..., 0] = 40000
    rgba[..., 3] = np.linspace(0, 65535, width, dtype=np.uint16)[None, :]
    out_path = tmp_path / "comp.mov"
    with open_writer(out_path, fps=24, width=width, height=height) as out:
        for _ in range(3):
            out.write(rgba)
    with av.open(str(out_path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores" and "a" in stream.codec_context.pix_fmt
        decoded = next(container.decode(stream)).to_ndarray(format="rgba64le")
    assert np.abs(decoded[..., 3].astype(int) - rgba[..., 3]).max() <= 80  # about one 10-bit step
    assert open_plate(out_path).info.frame_count == 3


def test_writers_refuse_their_input(shared_data, tmp_path):
    plate = tmp_path / "plate.mp4"
    shutil.copy(shared_data / NTSC_CLIP, plate)
    with pytest.raises(MediaError, match="refusing to write over the input"):
        open_writer(plate, fps=25, width=480, height=360, inputs=[plate])
    with pytest.raises(MediaError, match="refusing to write over the input"):
        open_writer(tmp_path / "shot.####.exr", fps=25, width=8, height=8, inputs=[tmp_path / "shot.1001.exr"])
    with pytest.raises(MediaError, match="refusing to write over the input"):
        open_writer(tmp_path / "shot.%04d.png", fps=25, width=8, height=8, inputs=[tmp_path / "shot.####.png"])


def test_aborted_writers_leave_nothing_under_the_final_name(tmp_path):
    class Cancelled(Exception):
        pass

    for name in ("out.mp4", "out.mov"):
        with pytest.raises(Cancelled):
            with open_writer(tmp_path / name, fps=25, width=16, height=16, audio=np.zeros(8000), audio_rate=16000) as out:
                out.write(np.zeros((16, 16, 3), np.uint8))
                raise Cancelled
        assert list(tmp_path.iterdir()) == [], f"{name} left files behind"

    # A sequence keeps the frames finished before the cancel (the render resumes from there),
    # and never a half-written one.
    with pytest.raises(Cancelled):
        with open_writer(tmp_path / "seq.####.png", fps=25, width=16, height=16) as out:
            out.write(np.zeros((16, 16, 3), np.uint8), 1)
            raise Cancelled
    assert [p.name for p in tmp_path.iterdir()] == ["seq.0001.png"]
    with pytest.raises(MediaError):
        with open_writer(tmp_path / "seq.####.exr", fps=25, width=16, height=16) as out:
            out.write(np.zeros((16, 16, 2), np.float16), 2)  # two channels: refused while writing the frame
    assert [p.name for p in tmp_path.iterdir()] == ["seq.0001.png"]


# ---------------------------------------------------------------------------------------- audio


def test_log_mel_frames_are_centred_on_their_time_and_windows_on_the_video_frame():
    audio = np.zeros(3 * SAMPLE_RATE, np.float32)
    click = int(1.25 * SAMPLE_RATE)
    audio[click : click + 32] = 1.0
    mel = log_mel(audio)
    assert mel.shape == (3 * MEL_FPS + 1, 80) and mel.dtype == np.float32
    assert -4.0 <= mel.min() and mel.max() <= 4.0
    assert int(np.argmax(mel.mean(axis=1))) == 100  # 1.25 s * 80

    for fps in (25, 29.97, 30):
        times = np.arange(int(3 * fps)) / fps
        windows = mel_windows(mel, times)
        assert windows.shape == (len(times), 16, 80)
        frame = int(round(1.25 * fps))
        peak_row = int(np.argmax(windows[frame].mean(axis=1)))
        # The click lies within half a mel frame of the window's centre, between rows 7 and 8.
        assert abs(peak_row - 7.5 - (1.25 - times[frame]) * MEL_FPS) <= 0.5 + 1e-6
    edge = mel_windows(mel, np.array([0.0]))
    assert np.all(edge[0, :7] == MEL_SILENCE)


def test_audio_for_range_pads_and_trims_and_says_so():
    audio = np.ones(SAMPLE_RATE * 2, np.float32)
    padded, message = audio_for_range(audio, 0.0, 5.2)
    assert len(padded) == int(5.2 * SAMPLE_RATE) and padded[-1] == 0.0
    assert message == "audio is 3.2 s shorter than the range: padded with silence"
    trimmed, message = audio_for_range(audio, 0.5, 1.0)
    assert len(trimmed) == SAMPLE_RATE and message == "audio is 0.5 s longer than the range: trimmed"
    exact, message = audio_for_range(audio, 0.0, 2.0)
    assert len(exact) == len(audio) and message is None


# --------------------------------------------------------------------------------------- colour


def test_integer_plates_round_trip_through_display_exactly():
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.uint16):
        image = rng.integers(0, np.iinfo(dtype).max + 1, (16, 16, 4), dtype=dtype)
        assert np.array_equal(from_display(to_display(image), like=image), image)


def test_composite_copies_the_plate_outside_the_mask_and_blends_linear_light_inside():
    rng = np.random.default_rng(4)
    plate = (rng.random((16, 16, 4)) * 3).astype(np.float16)  # highlights above 1 are normal in EXR
    plate[0, 0, 0] = np.nan
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 4:12] = 1.0
    mask[4:12, 8] = 0.5
    generated = np.full((16, 16, 3), 0.5, np.float32)  # display-encoded mid grey
    result = composite(plate, generated, mask)
    outside = mask == 0
    assert result.dtype == plate.dtype
    assert np.array_equal(result[outside].view(np.uint16), plate[outside].view(np.uint16))
    assert np.array_equal(result[..., 3].view(np.uint16), plate[..., 3].view(np.uint16))
    linear_grey = ((0.5 + 0.055) / 1.055) ** 2.4  # 0.214: the sRGB decoding of 0.5
    assert np.allclose(result[6, 6, :3].astype(np.float32), linear_grey, atol=1e-3)
    half = 0.5 * plate[6, 8, :3].astype(np.float32) + 0.5 * linear_grey
    assert np.allclose(result[6, 8, :3].astype(np.float32), half, rtol=2e-3)


# ---------------------------------------------------------------------------------------- probe


def test_probe_reports_variable_rate_and_audio_offsets(shared_data, capsys):
    assert cli_main(["probe", "--json", str(shared_data / VFR_CLIP)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["variable_fps"] is True and report["frame_count"] == 135
    assert any("variable frame rate" in note for note in report["warnings"])

    assert cli_main(["probe", str(shared_data / HAMILTON_CLIP)]) == 0
    text = capsys.readouterr().out
    assert "29.97 fps constant" in text and "0-274 (275 frames)" in text
    assert "audio starts 0.844 s (25.3 frames) before the first frame" in text

    assert cli_main(["probe", str(shared_data / "nothing-here.mp4")]) == 2
    assert "nothing-here.mp4: file not found" in capsys.readouterr().err
