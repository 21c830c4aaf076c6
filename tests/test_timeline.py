"""`lipsync dub-timeline`: an editorial timeline in, the same edit playing dubbed media out.

The timeline is built here from a real clip and real speech: what an editor would export, with the
production sound on A1 and the dub line on a track named 'dub'.
"""

from __future__ import annotations

from pathlib import Path

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
    assert shot_a.source_range == _range(0, 6)
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
    job = ClipJob(otio.schema.Clip(name="shot A"), frames=(1020, 1025), fps=24.0)
    reference, used = dubbed_reference(tmp_path / "001_shot_A.####.exr", job)
    assert reference.frame_for_time(used.start_time) == 1020
    assert used.duration == otio.opentime.RationalTime(6, 24)
    first_file = otio.url_utils.filepath_from_url(reference.target_url_for_image_number(0))
    assert first_file == str(tmp_path / "001_shot_A.1020.exr")
