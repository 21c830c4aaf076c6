"""`lipsync dub-timeline`: an editorial timeline in, the same edit playing dubbed media out.

The timeline is built here from a real clip and real speech: what an editor would export, with the
production sound on A1 and the dub line on a track named 'dub'.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.cli import main as cli_main
from lipsync_core.dub.timeline import ClipJob, dubbed_reference, plan
from lipsync_core.media.audio import SAMPLE_RATE, load_audio
from lipsync_core.media.frames import open_plate

FPS = 25


def _t(frames: float) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, FPS)


def _range(start: float, duration: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(_t(start), _t(duration))


def _clip(name: str, path: Path, start: float, duration: float, media_frames: float) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(path)),
                                              available_range=_range(0, media_frames))
    return otio.schema.Clip(name=name, media_reference=reference, source_range=_range(start, duration))


def _edit(plate: Path, dub: Path) -> otio.schema.Timeline:
    """V1: shot A (plate frames 20-25), a 3-frame gap, shot B (plate frames 40-44).
    A1 (production sound) under everything; 'dub' holds one line, from 1.0 s into its file,
    starting 2 frames into shot A and ending before shot B."""
    timeline = otio.schema.Timeline(name="reel 1")
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    video.extend([_clip("shot A", plate, 20, 6, 75), otio.schema.Gap(source_range=_range(0, 3)), _clip("shot B", plate, 40, 5, 75)])
    production = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    production.append(_clip("sync sound", plate, 20, 14, 75))
    dub_track = otio.schema.Track(name="dub", kind=otio.schema.TrackKind.Audio)
    dub_track.extend([otio.schema.Gap(source_range=_range(0, 2)), _clip("line 1", dub, 25, 5, 75)])  # 25 frames = 1.0 s
    timeline.tracks.extend([video, production, dub_track])
    return timeline


def test_the_dub_is_the_longest_overlap_on_the_dub_track_only(tmp_path):
    clip = tmp_path / "plate.mov"
    timeline = _edit(clip, tmp_path / "dub.wav")
    jobs = plan(timeline, tmp_path, "dub")
    assert [job.clip.name for job in jobs] == ["shot A", "shot B"]
    # Shot A: the dub line overlaps it; the file does not exist, so it fails with the file named.
    assert jobs[0].status == "failed" and "plate.mov" in jobs[0].problem
    # Shot B: only production sound under it (A1 is not the dub track): kept as it is.
    assert jobs[1].status == "skipped" and "no clip on audio track 'dub'" in jobs[1].problem
    assert all(job.status == "skipped" for job in plan(timeline, tmp_path, "ADR"))


def test_dubbed_timeline_plays_the_dubbed_shot_in_place_with_the_dub_where_it_was(plate, dub_audio, tiny_model, tmp_path, capsys):
    source = tmp_path / "reel1.otio"
    otio.adapters.write_to_file(_edit(plate, dub_audio), str(source))
    before = source.read_bytes()
    out = tmp_path / "reel1_dub.otio"

    code = cli_main(["dub-timeline", str(source), "-o", str(out), "--model", str(tiny_model), "--device", "cpu", "--batch", "3"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert source.read_bytes() == before, "the editor's timeline was changed"
    assert "1 done, 1 skipped, 0 failed" in printed

    original, dubbed = otio.adapters.read_from_file(str(source)), otio.adapters.read_from_file(str(out))
    shot_a, shot_b = dubbed.video_tracks()[0].find_clips()
    assert shot_a.range_in_parent() == original.video_tracks()[0].find_clips()[0].range_in_parent()
    assert shot_b.is_equivalent_to(original.video_tracks()[0].find_clips()[1])
    assert [t.is_equivalent_to(o) for t, o in zip(dubbed.audio_tracks(), original.audio_tracks())] == [True, True]

    media = Path(otio.url_utils.filepath_from_url(shot_a.media_reference.target_url))
    assert media.parent == tmp_path / "reel1_dub_media" and media.suffix == ".mov"
    assert shot_a.source_range == _range(20, 6)  # the clip's own source range: the new media keeps its source time
    assert shot_a.media_reference.available_range == _range(20, 6)
    assert list(shot_a.metadata["lipsync"]["frames"]) == [20, 25]
    with open_plate(media) as result, open_plate(plate) as original_plate:
        assert result.info.frame_count == 6
        assert (result.info.width, result.info.height) == (original_plate.info.width, original_plate.info.height)

    # The dubbed shot carries the dub as the timeline played it: its first frame sits 2 frames before
    # the line starts, and the line starts 1.0 s into its file, so the shot hears the file from 0.92 s.
    heard = load_audio(media)
    expected = load_audio(dub_audio, offset_s=1.0 - 2 / FPS)[: len(heard)]
    assert len(heard) == pytest.approx(6 / FPS * SAMPLE_RATE, abs=2)
    assert np.corrcoef(heard, expected)[0, 1] > 0.9, "the dubbed shot's audio is not the dub where the edit has it"


def test_a_sequence_output_keeps_the_plates_frame_numbers_in_the_new_timeline(tmp_path):
    used = otio.opentime.TimeRange(otio.opentime.RationalTime(86420, 24), otio.opentime.RationalTime(6, 24))
    job = ClipJob(otio.schema.Clip(name="shot A", source_range=used), frames=(1020, 1025), fps=24.0,
                  media_start=used.start_time)
    reference, source_range = dubbed_reference(tmp_path / "001_shot_A.####.exr", job)
    assert source_range == used
    assert reference.frame_for_time(used.start_time) == 1020
    assert used.duration == otio.opentime.RationalTime(6, 24)
    first_file = otio.url_utils.filepath_from_url(reference.target_url_for_image_number(0))
    assert first_file == str(tmp_path / "001_shot_A.1020.exr")


def _with_timecode(plate: Path, path: Path, timecode: str) -> Path:
    """The plate re-encoded into a .mov whose start timecode is `timecode`, as camera media is."""
    with av.open(str(plate)) as source, av.open(str(path), "w") as out:
        out.metadata["timecode"] = timecode
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        for number, frame in enumerate(source.decode(video=0)):
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24").reformat(format="yuv420p")
            picture.pts = number
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return path


def _resolve_export(camera: Path, plate: Path, dub: Path) -> otio.schema.Timeline:
    """A timeline shaped like Resolve's OTIO export: it starts at 01:00:00:00; shot A's media has no
    available range (its source range is the camera file's timecode); a dissolve joins A and B; C is
    played at 200%; a compound clip (nested stack) follows; the dub is on its own audio track."""
    hour = 3600 * FPS
    timeline = otio.schema.Timeline(name="Timeline 1", global_start_time=_t(hour))
    shot_a = otio.schema.Clip(name="A001_C002.mov", source_range=_range(hour + 20, 6),
                              media_reference=otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(camera))),
                              metadata={"Resolve_OTIO": {"Clip Color": "Orange"}})
    shot_a.markers.append(otio.schema.Marker(name="line", marked_range=_range(hour + 22, 1)))
    shot_c = _clip("shot C", plate, 50, 4, 75)
    shot_c.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    compound = otio.schema.Stack(name="Compound Clip 1", children=[otio.schema.Track(children=[_clip("inner", plate, 60, 4, 75)])])
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    video.extend([shot_a, otio.schema.Transition(name="Cross Dissolve", transition_type="SMPTE_Dissolve", in_offset=_t(2),
                                                 out_offset=_t(2)),
                  _clip("shot B", plate, 40, 5, 75), shot_c, compound])
    dub_track = otio.schema.Track(name="dub", kind=otio.schema.TrackKind.Audio)
    dub_track.extend([_clip("line 1", dub, 25, 11, 75), _clip("line 2", dub, 0, 8, 75)])  # under A+B, then C+compound
    timeline.tracks.extend([video, dub_track])
    return timeline


def test_a_resolve_export_with_timecode_media_transitions_retimes_and_compounds(plate, dub_audio, tiny_model, tmp_path, capsys):
    camera = _with_timecode(plate, tmp_path / "A001_C002.mov", "01:00:00:00")
    source = tmp_path / "Timeline 1.otio"
    otio.adapters.write_to_file(_resolve_export(camera, plate, dub_audio), str(source))
    out = tmp_path / "Timeline 1 dub.otio"

    code = cli_main(["dub-timeline", str(source), "-o", str(out), "--handles", "2", "--model", str(tiny_model),
                     "--device", "cpu", "--batch", "4"])
    printed = capsys.readouterr().out
    # Nothing is skipped silently: the retimed clip and the compound clip are failures with their reasons.
    assert code == 1 and "2 done, 0 skipped, 2 failed" in printed, printed
    assert "it is retimed (LinearTimeWarp x2)" in printed and "a compound clip (nested stack)" in printed

    original = otio.adapters.read_from_file(str(source)).video_tracks()[0]
    dubbed = otio.adapters.read_from_file(str(out)).video_tracks()[0]
    shot_a, _, shot_b, shot_c, compound = dubbed
    # A: the camera file's timecode placed its source range (frame 20 of the file); rendered with the
    # dissolve's 2 frames after the cut and 2 handles either side; its new media starts at the source
    # timecode of its first frame, so the clip keeps its own source range and markers.
    assert list(shot_a.metadata["lipsync"]["frames"]) == [18, 29]
    assert shot_a.media_reference.available_range == _range(3600 * FPS + 18, 12)
    assert shot_a.source_range == original[0].source_range and shot_a.markers[0].name == "line"
    assert shot_a.range_in_parent() == original[0].range_in_parent()
    # B: the dissolve's 2 frames before its cut and 2 handles: from plate frame 36.
    assert list(shot_b.metadata["lipsync"]["frames"]) == [36, 46]
    assert shot_b.source_range == original[2].source_range
    for clip, count in ((shot_a, 12), (shot_b, 11)):
        with open_plate(Path(otio.url_utils.filepath_from_url(clip.media_reference.target_url))) as result:
            assert result.info.frame_count == count
    assert shot_c.is_equivalent_to(original[3]) and compound.is_equivalent_to(original[4])
    # A's first frame is 2 handle frames before its cut, where the edit plays the dub from 1.0 s.
    heard = load_audio(Path(otio.url_utils.filepath_from_url(shot_a.media_reference.target_url)))
    expected = load_audio(dub_audio, offset_s=1.0 - 2 / FPS)[: len(heard)]
    assert np.corrcoef(heard, expected)[0, 1] > 0.9


def test_media_without_an_available_range_or_a_timecode_is_refused_when_the_range_is_not_in_it(plate, tmp_path):
    timeline = _resolve_export(plate, plate, plate)  # shot A now points at a file with no start timecode
    jobs = plan(timeline, tmp_path, "dub")
    assert jobs[0].status == "failed" and "starts at 01:00:00:20, which is not in plate.mpg" in jobs[0].problem
    assert "no start timecode" in jobs[0].problem
