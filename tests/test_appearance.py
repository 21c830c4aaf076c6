"""The footage mouth (the default `lipsync dub`): the actor's own frames moved to the dub's mouth shapes, on a
real clip: real detail kept, nothing touched outside the mask, chunks equal to a full render."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipsync_core.appearance.select import select_sources
from lipsync_core.appearance.warp import mouth_points, triangles
from lipsync_core.dub import pipeline
from lipsync_core.dub.pipeline import Renderer, dub
from lipsync_core.errors import ModelError
from lipsync_core.models.actor import DEFAULT_MODEL, DEFAULT_RENDERER
from lipsync_core.face.landmarks import LIPS
from lipsync_core.media.frames import open_plate, sequence_files
from lipsync_core.provenance.facts import file_sha256, frame_facts
from lipsync_core.shot import Shot

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLIP = "av/OpenTalker_examples_face_5.mp4"  # 524x524, a dev clip: a person no model trained on
SPEECH = "audio/AP0827_DeepGram_audio_harvard.flac"


@pytest.fixture(scope="module")
def plate(shared_data: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    shutil.copy(shared_data / CLIP, folder / "plate.mp4")
    return folder / "plate.mp4"


@pytest.fixture(scope="module")
def rendered(plate: Path, shared_data: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "dub.####.png"
    # Without the invisible watermark: its texture would count as the mouth's detail.
    report = dub(plate, shared_data / SPEECH, out, frames=(0, 39), watermark=False)
    with open_plate(plate, frames=(0, 39)) as source:
        originals = [f.image for f in source]
    with open_plate(out) as result:
        dubbed = [f.image for f in result]
    return report, originals, dubbed, out


@pytest.fixture(scope="module")
def renderer(plate: Path, shared_data: Path, rendered) -> Renderer:
    return Renderer(plate, shared_data / SPEECH)


def _lip_texture(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Laplacian energy of the lips and the skin around them, the mouth's opening left out: what a blur loses,
    whatever the mouth shows between the lips (teeth in one frame, closed lips in the next)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.Laplacian(grey, cv2.CV_32F) ** 2
    keep = np.zeros(grey.shape, np.uint8)
    ys, xs = _lip_box(landmarks)
    keep[ys, xs] = 1
    cv2.fillPoly(keep, [np.round(landmarks[list(LIPS[20:]), :2]).astype(np.int32)], 0)
    cv2.polylines(keep, [np.round(landmarks[list(LIPS[20:]), :2]).astype(np.int32)], True, 0, 3)
    return float(energy[keep > 0].mean())


def _lip_box(landmarks: np.ndarray) -> tuple[slice, slice]:
    lips = landmarks[list(LIPS), :2]
    (x0, y0), (x1, y1) = np.floor(lips.min(0)).astype(int) - 4, np.ceil(lips.max(0)).astype(int) + 4
    return slice(y0, y1), slice(x0, x1)


def test_the_mouth_changes_keeps_the_footages_detail_and_nothing_outside_the_mask_moves(plate, rendered, renderer):
    report, originals, dubbed, _ = rendered
    with open_plate(plate) as source:
        footage = [f.image for f in source]
    assert len(report.dubbed) == 40 and any("actor style" in line for line in report.lines())
    kept, changed = [], 0
    for number, (before, after) in enumerate(zip(originals, dubbed)):
        index = renderer.track.index(number)
        mask = renderer._mask(index, before.shape[:2])
        outside = mask == 0
        np.testing.assert_array_equal(after[outside], before[outside])  # bit-exact outside the blend mask
        box = _lip_box(renderer.face.landmarks[index])
        changed += np.abs(after[box].astype(int) - before[box]).mean() > 2
        # Real lips, not a blur: the lips keep the fine detail of the frame they were taken from.
        source = int(renderer.footage.selection[index])
        target = renderer.footage.target_points(index, source)
        kept.append(_lip_texture(after, target) / _lip_texture(footage[renderer.track.frames[source]], renderer.face.landmarks[source]))
    assert changed >= 30  # the mouth is not the original performance
    assert np.median(kept) >= 0.8, np.round(kept, 2)


def test_the_rendered_mouth_keeps_the_texture_changes_only_the_mask_and_renders_in_chunks(plate, shared_data, rendered,
                                                                                       renderer, tmp_path):
    """`--mouth rendered`: the StyleLipSync renderer over the same warped frames. It repaints the mouth (not only by
    rounding), keeps the warped frames' fine texture, leaves every pixel outside the mask as the plate's, names the
    renderer in every frame's facts beside the motion model, and a chunk is the same frames of a longer render."""
    _, originals, warped, _ = rendered
    out = tmp_path / "rendered.####.png"
    dub(plate, shared_data / SPEECH, out, frames=(0, 15), mouth="rendered", watermark=False)
    with open_plate(out) as result:
        dubbed = [f.image for f in result]
    repainted, kept = 0, []
    for number, image in enumerate(dubbed):
        index = renderer.track.index(number)
        mask = renderer._mask(index, image.shape[:2])
        np.testing.assert_array_equal(image[mask == 0], originals[number][mask == 0])
        box = _lip_box(renderer.face.landmarks[index])
        repainted += np.abs(image[box].astype(int) - warped[number][box]).mean() > 0.5
        target = renderer.footage.target_points(index, int(renderer.footage.selection[index]))
        kept.append(_lip_texture(image, target) / _lip_texture(warped[number], target))
    assert repainted >= 12
    assert np.median(kept) >= 0.9, np.round(kept, 2)
    facts = frame_facts(sequence_files(out)[0])
    assert facts["lipsync.mouth"] == "rendered"
    assert facts["lipsync.renderer"] == f"{DEFAULT_RENDERER.name} sha256:{file_sha256(DEFAULT_RENDERER)}"
    chunk = tmp_path / "chunk.####.png"
    dub(plate, shared_data / SPEECH, chunk, frames=(10, 12), mouth="rendered", watermark=False)
    with open_plate(chunk) as result:
        for frame in result:
            np.testing.assert_array_equal(frame.image, dubbed[frame.number], err_msg=str(frame.number))


def test_a_generator_given_as_the_renderer_is_refused_before_any_work(plate, shared_data, tmp_path):
    out = tmp_path / "dub.mp4"
    with pytest.raises(ModelError, match="a generator .* cannot make --mouth rendered"):
        dub(plate, shared_data / SPEECH, out, model=DEFAULT_MODEL, mouth="rendered")
    assert not out.exists()


def test_the_lips_move_without_folding_the_face_mesh(renderer):
    """Every lip triangle of the warp keeps its orientation on every frame: a flipped one draws the lip's edge
    twice (torn corners, stair-stepped lip lines). Slivers under a square pixel do not count."""
    tris = triangles()
    lips = np.isin(tris, LIPS).any(1)

    def areas(points: np.ndarray) -> np.ndarray:
        a, b, c = (points[tris[lips, k]] for k in range(3))
        return np.cross(b - a, c - a)

    footage = renderer.footage
    for index in np.flatnonzero(footage.selection >= 0):
        source = int(footage.selection[index])
        before, after = (areas(p) for p in mouth_points(footage.face.landmarks[source][:, :2], footage.target_points(index, source)))
        folded = (before * after < 0) & (np.abs(before) > 1) & (np.abs(after) > 1)
        assert not folded.any(), (index, tris[lips][folded])


def test_a_chunk_equals_the_same_frames_of_a_full_render(plate, shared_data, rendered, tmp_path):
    _, _, dubbed, _ = rendered
    out = tmp_path / "chunk.####.png"
    dub(plate, shared_data / SPEECH, out, frames=(17, 25), watermark=False)
    with open_plate(out) as chunk:
        for frame in chunk:
            np.testing.assert_array_equal(frame.image, dubbed[frame.number], err_msg=str(frame.number))


def test_a_render_whose_source_frames_do_not_fit_its_memory_budget_equals_one_that_decodes_them_at_once(
        plate, shared_data, rendered, tmp_path, monkeypatch):
    """A long shot at 4K decodes its source frames a budget at a time, dropping those the next frames no longer use:
    the picture must not depend on it."""
    _, _, dubbed, _ = rendered
    monkeypatch.setattr(pipeline, "SOURCE_BYTES", 1)  # every cell decodes its own sources
    out = tmp_path / "budget.####.png"
    dub(plate, shared_data / SPEECH, out, frames=(0, 19), watermark=False)
    with open_plate(out) as result:
        for frame in result:
            np.testing.assert_array_equal(frame.image, dubbed[frame.number], err_msg=str(frame.number))


def test_while_the_dub_speaks_no_source_frame_is_held_still(renderer) -> None:
    """A source frame shown for several frames in a row is a still mouth that only the warp moves: while the dub
    speaks, the footage plays on (or cuts) instead."""
    selection, curves = renderer.footage.selection, renderer.footage.curves
    held = np.zeros(len(selection), bool)
    start = 0
    for t in range(1, len(selection) + 1):
        if t == len(selection) or selection[t] != selection[t - 1]:
            held[start:t] = t - start >= 3
            start = t
    speaking = ~curves.silent & (selection >= 0)
    assert speaking.sum() > 50
    assert held[speaking].mean() < 0.15, held[speaking].mean()


def test_selection_plays_the_footage_on_rather_than_cutting_every_frame() -> None:
    """Target shapes that follow the footage's own with a small shift: the path plays consecutive source frames."""
    rng = np.random.default_rng(0)
    footage = np.cumsum(rng.normal(0, 1, (200, 57, 2)), axis=0).astype(np.float32)
    target = footage[40:140] + rng.normal(0, 0.05, (100, 57, 2)).astype(np.float32)
    ok = np.ones(200, bool)
    chosen = select_sources(np.concatenate([target, footage[100:]]), ok, np.zeros((200, 3)), footage, ok, np.zeros((200, 3)))
    assert (chosen[:100] == np.arange(40, 140)).mean() > 0.95
    jumps = (np.diff(chosen[:100]) != 1).sum()
    assert jumps <= 3


def test_edited_motion_curves_change_exactly_the_frames_edited(plate, shared_data, rendered, tmp_path):
    """`lipsync motion` curves fed back to the dub: unedited they give the same frames; a frame an artist closed
    by hand (opening 0) changes, and only the frames whose source choice the edit moved."""
    import json

    from lipsync_core.motion.curves import write_curves
    from lipsync_core.motion.stage import shot_motion

    _, _, dubbed, _ = rendered
    curves = write_curves(tmp_path / "motion.json", shot_motion(plate, shared_data / SPEECH))
    same = tmp_path / "same.####.png"
    dub(plate, shared_data / SPEECH, same, frames=(0, 39), motion_curves=curves, watermark=False)
    with open_plate(same) as result:
        for frame in result:
            np.testing.assert_array_equal(frame.image, dubbed[frame.number], err_msg=str(frame.number))

    data = json.loads(curves.read_text())
    widest = max(range(40), key=lambda i: data["frames"][i]["opening"])
    data["frames"][widest]["opening"] = 0.0  # closed there
    curves.write_text(json.dumps(data))
    edited = tmp_path / "edited.####.png"
    dub(plate, shared_data / SPEECH, edited, frames=(0, 39), motion_curves=curves, watermark=False)
    with open_plate(edited) as result:
        changed = [f.number for f in result if not np.array_equal(f.image, dubbed[f.number])]
    assert widest in changed and len(changed) <= 10, (widest, changed)


ACTOR = "video/ali-vilab_ata_style_clip_video_M030_front_angry_level3_001.mp4"  # MEAD actor M030, 256x256, silent
SAME_ACTOR = "video/ali-vilab_ata_style_clip_video_M030_front_happy_level3_001.mp4"  # the same actor, another take
OTHER_ACTOR = "video/ali-vilab_ata_style_clip_video_W009_front_angry_level3_001.mp4"  # another person


@pytest.fixture(scope="module")
def actor_clips(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("actor")
    clips = {"plate": ACTOR, "same": SAME_ACTOR, "other": OTHER_ACTOR}
    for name, clip in clips.items():
        shutil.copy(shared_data / clip, folder / f"{name}.mp4")
    return {name: folder / f"{name}.mp4" for name in clips}


@pytest.fixture(scope="module")
def actor_file(actor_clips, shared_data, tmp_path_factory) -> Path:
    """The actor file `personalize` writes from the other take of the plate's actor, in a folder of its own with
    the take (a tiny random base model and one step: the footage it records is what matters here)."""
    from test_personalize import make_base

    from lipsync_core.train.personalize import personalize, prepare_footage

    folder = tmp_path_factory.mktemp("jane")
    shutil.copy(actor_clips["same"], folder / "take.mp4")
    base = make_base(folder / "base.safetensors", seed=0)
    clip = prepare_footage(folder / "take.mp4", shared_data / SPEECH, None, 32)  # the take is silent: any speech
    personalize([clip], base, folder / "jane.safetensors", steps=1, rank=0, reader_steps=2, measure=False)
    return folder / "jane.safetensors"


@contextmanager
def sidecar_appearance(plate: Path, clips: list[str]):
    """The plate's sidecar listing `clips` as its appearance footage, for the length of the block."""
    shot = Shot.for_plate(plate)
    shot.appearance = clips
    path = shot.save()
    try:
        yield path
    finally:
        path.unlink()


@pytest.mark.parametrize("given", ["--appearance", "sidecar"])
def test_added_footage_of_another_person_is_refused_and_nothing_is_written(given, actor_clips, shared_data, tmp_path,
                                                                           capsys):
    from lipsync_core.cli import main as cli_main

    before = {name: path.read_bytes() for name, path in actor_clips.items()}
    out = tmp_path / "out.mp4"
    arguments = ["dub", str(actor_clips["plate"]), str(shared_data / SPEECH), "-o", str(out)]
    if given == "--appearance":
        code = cli_main(arguments + ["--appearance", str(actor_clips["other"])])
    else:
        with sidecar_appearance(actor_clips["plate"], ["other.mp4"]):
            code = cli_main(arguments)
    message = capsys.readouterr().err
    assert code == 2 and "other.mp4: shows someone else" in message and "Traceback" not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert {name: path.read_bytes() for name, path in actor_clips.items()} == before


@pytest.mark.parametrize("given", ["--appearance", "sidecar", "actor"])
def test_added_footage_of_the_actor_lends_the_mouths_the_shot_lacks(given, actor_clips, actor_file, shared_data):
    """The shot's own frames cut down to its closed mouths: the dub's open mouths are taken from another take of
    the same actor (given with --appearance, listed in the shot's sidecar, or recorded in the actor file personalize
    wrote from it), and the coverage the report gives rises."""
    from lipsync_core.appearance.footage import FootageMouth
    from lipsync_core.face import geometry
    from lipsync_core.motion.shape import CROP_UNITS, crop_points, opening

    take = actor_file.parent / "take.mp4" if given == "actor" else actor_clips["same"]
    if given == "--appearance":
        renderer = Renderer(actor_clips["plate"], shared_data / SPEECH, appearance=[take])
    elif given == "sidecar":
        with sidecar_appearance(actor_clips["plate"], ["same.mp4"]):
            renderer = Renderer(actor_clips["plate"], shared_data / SPEECH)
    else:
        renderer = Renderer(actor_clips["plate"], shared_data / SPEECH, actor=actor_file)
    assert any(note.startswith(f"added footage {take}") for note in renderer.notes), renderer.notes
    assert [footage.plate for footage in renderer.appearance_footage()] == [take]
    shot = renderer.footage.sources[0]
    curves = renderer.footage.curves
    own = opening(shot.shapes)
    closed = shot.usable & (own <= np.nanpercentile(own[shot.usable], 30))
    shot.usable = closed
    alone = FootageMouth(shot, curves)
    helped = FootageMouth(shot, curves, renderer.appearance_footage())
    assert alone.coverage < helped.coverage
    assert alone.coverage_note() is not None and (helped.coverage_note() or "") != alone.coverage_note()
    wide = np.flatnonzero(closed & (curves.opening > np.nanmax(own[closed] - opening(curves.rest))))
    assert len(wide) >= 3
    from_added = [i for i in wide if helped.selection[i] >= len(shot.track)]
    assert from_added
    footage, k = helped.source(int(helped.selection[from_added[0]]))
    assert footage.plate == take and footage.usable[k]

    def shortfall(mouth: FootageMouth) -> float:
        """How far the rendered lips fall short of the dub's opening on the wide frames (crop units)."""
        misses = []
        for i in wide:
            lips = mouth.target_points(i, int(mouth.selection[i]))
            shape = crop_points(geometry.transform_points(lips, shot.face.alignment(i, CROP_UNITS))[None], CROP_UNITS)
            misses.append(curves.opening[i] - (opening(shape)[0] - opening(curves.rest)))
        return float(np.mean(misses))

    assert shortfall(helped) < shortfall(alone)


def test_the_actor_files_clips_are_found_where_they_moved_and_left_out_when_gone_or_changed(actor_file, tmp_path):
    """The actor's folder moved whole: its take is found beside the actor file. The take changed, or gone: not
    used, and the note says which clip and what to do."""
    from lipsync_core.appearance.actor_clips import actor_clips as lent_clips

    moved = shutil.copytree(actor_file.parent, tmp_path / "moved", copy_function=shutil.copy2)
    take = actor_file.parent / "take.mp4"
    hidden = take.rename(take.with_name("archived.mp4"))  # not at its recorded path any more
    try:
        clips, notes = lent_clips(moved / "jane.safetensors")
        assert [c.path for c in clips] == [moved / "take.mp4"] and clips[0].given == "the footage of jane.safetensors"
        assert notes == []

        stat = (moved / "take.mp4").stat()
        os.utime(moved / "take.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # written again since
        clips, notes = lent_clips(moved / "jane.safetensors")
        assert clips == [] and len(notes) == 1
        assert notes[0].startswith(f"{moved / 'take.mp4'}: changed since jane.safetensors was personalized on it")
        assert "--appearance" in notes[0]

        (moved / "take.mp4").unlink()
        clips, notes = lent_clips(moved / "jane.safetensors")
        assert clips == [] and len(notes) == 1
        assert notes[0].startswith(f"{take}: not found (nor as take.mp4 beside jane.safetensors)")
    finally:
        hidden.rename(take)


def test_dub_actor_refuses_a_file_that_is_no_actor_file_before_any_work(actor_clips, actor_file, shared_data, tmp_path,
                                                                        capsys):
    from lipsync_core.cli import main as cli_main

    out = tmp_path / "out.mp4"
    base = actor_file.parent / "base.safetensors"  # the base model the actor was made from
    code = cli_main(["dub", str(actor_clips["plate"]), str(shared_data / SPEECH), "-o", str(out), "--actor", str(base)])
    message = capsys.readouterr().err
    assert code == 2 and f"{base}: not an actor file" in message and "Traceback" not in message
    assert list(tmp_path.iterdir()) == []


def test_the_appearance_column_of_a_shot_list_reaches_the_identity_check(actor_clips, shared_data, tmp_path, capsys):
    """`lipsync batch`: a row's appearance clips (separated by '|') are added footage, checked like any: a clip of
    another person fails that shot, naming the clip, and writes nothing."""
    from lipsync_core.cli import main as cli_main

    shots = tmp_path / "shots.csv"
    shots.write_text(f"plate,audio,output,appearance\n{actor_clips['plate']},{shared_data / SPEECH},out.mp4,"
                     f"{actor_clips['same']}|{actor_clips['other']}\n")
    assert cli_main(["batch", str(shots)]) == 1
    assert "other.mp4: shows someone else" in capsys.readouterr().out
    assert not (tmp_path / "out.mp4").exists()


def test_the_colour_correction_follows_light_that_changes_across_the_face():
    """The plate is lit from one side, the source frame evenly: the correction measured at the mask's edge
    follows the gradient inside, where one offset for the whole box would leave both sides wrong."""
    from lipsync_core.appearance.footage import colour_correction

    height, width = 120, 160
    ys, xs = np.mgrid[0:height, 0:width]
    light = (xs / width * 40.0).astype(np.float32)[..., None].repeat(3, axis=2)  # plate minus source: 0 .. 40
    edge = np.zeros((height, width), bool)
    cv2.ellipse(edge.view(np.uint8), (80, 60), (60, 40), 0, 0, 360, 1, 6)
    inside = np.zeros((height, width), np.uint8)
    cv2.ellipse(inside, (80, 60), (45, 28), 0, 0, 360, 1, -1)
    corrected = colour_correction(light, edge, face_height=120.0)
    error = np.abs(corrected - light)[inside > 0].mean()
    flat_error = np.abs(light[edge].mean(0) - light)[inside > 0].mean()
    assert error < 0.5 * flat_error, (error, flat_error)


def test_the_colour_correction_ignores_an_edge_where_the_jaw_moved():
    """Where the jaw moved, the mask's edge compares chin with neck (or the face's outline with the background):
    a difference that is geometry, not light. It must not brighten the whole lower face (it did: a white patch
    on a dev clip where the plate's chin met the warped face's neck shadow)."""
    from lipsync_core.appearance.footage import colour_correction

    height, width = 120, 160
    light = np.full((height, width, 3), 6.0, np.float32)  # the plate is 6 levels brighter than the source
    edge = np.zeros((height, width), bool)
    cv2.ellipse(edge.view(np.uint8), (80, 60), (60, 40), 0, 0, 360, 1, 6)
    difference = light.copy()
    chin = edge & (np.mgrid[0:height, 0:width][0] > 85)
    difference[chin] = 90.0  # the lowest part of the edge: chin against neck
    inside = np.zeros((height, width), np.uint8)
    cv2.ellipse(inside, (80, 60), (45, 28), 0, 0, 360, 1, -1)
    corrected = colour_correction(difference, edge, face_height=120.0)
    assert chin.sum() > 0.1 * edge.sum()
    assert np.abs(corrected - light)[inside > 0].max() < 2.0, np.abs(corrected - light)[inside > 0].max()
