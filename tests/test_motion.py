"""The motion stage on real clips: speech -> mouth shapes, calibrated to the actor, editable as curves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lipsync_core.errors import ShotError
from lipsync_core.metrics import pearson
from lipsync_core.models.config import get_config
from lipsync_core.models.checkpoint import file_metadata
from lipsync_core.models.motion import DEFAULT_MOTION_MODEL, MotionConfig, load_motion_model
from lipsync_core.motion.curves import CurvesError, read_curves, write_curves
from lipsync_core.motion.measure import own_audio
from lipsync_core.motion.shape import crop_points, opening
from lipsync_core.motion.stage import SPEAKER_SCALE_LIMITS, predict, shot_motion
from lipsync_core.motion.style import actor_style
from lipsync_core.shot import Keyframes, Shot
from lipsync_core.train.prepare import ClipSource, prepare_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PLATE = "av/rizkiarm_evaluation_samples_GRID_lrwp9a.mpg"  # a dev clip: a person the model never trained on
DEV_CLIPS = (PLATE, "av/OpenTalker_examples_face_5.mp4", "av/astorfi_data_sample_video.mp4")
SPEECH = "audio/AP0827_DeepGram_audio_harvard.flac"


@pytest.fixture(scope="module")
def model():
    return load_motion_model()


@pytest.fixture(scope="module")
def dev_clips(shared_data: Path):
    return [prepare_clip(ClipSource(shared_data / name, None), get_config("cpu").size) for name in DEV_CLIPS]


@pytest.fixture()
def plate(shared_data: Path, tmp_path: Path) -> Path:
    """A copy of the dev GRID clip in its own folder (its sidecar and track land beside it)."""
    copy = tmp_path / "shot" / "plate.mpg"
    copy.parent.mkdir()
    shutil.copy(shared_data / PLATE, copy)
    return copy


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> Path:
    return shared_data / SPEECH


def test_bundled_model_is_shipped_with_its_card() -> None:
    assert DEFAULT_MOTION_MODEL.is_file()
    assert DEFAULT_MOTION_MODEL.with_suffix(".md").is_file()


def test_mouth_follows_the_clips_own_speech_better_than_shuffled_speech(model, dev_clips) -> None:
    """On people the model never saw: the predicted opening correlates with the true one far better with the
    clip's own audio than with the same audio cut in 0.4 s pieces and shuffled."""
    rng = np.random.default_rng(0)
    own, shuffled = [], []
    for clip in dev_clips:
        truth = crop_points(clip.landmarks, clip.meta["size"])
        style = actor_style(model, truth, clip.valid, None, clip.times)
        true_gap = opening(truth)[clip.valid]
        own.append(pearson(opening(predict(model, style, clip.mel, clip.times)[0])[clip.valid], true_gap))
        pieces = np.array_split(clip.mel, max(2, len(clip.mel) // 32))
        mixed = np.concatenate([pieces[i] for i in rng.permutation(len(pieces))])
        shuffled.append(pearson(opening(predict(model, style, mixed, clip.times)[0])[clip.valid], true_gap))
    assert np.median(own) > 0.3, own
    assert np.median(own) > np.median(shuffled) + 0.2, (own, shuffled)


def test_a_dub_moves_the_mouth_as_far_as_the_actor_does_whoever_speaks_it(model, dev_clips) -> None:
    """Each dev actor dubbed with the others' speech: the model hears how wide each speaker articulates, and the dub
    must not carry it over. While the dub speaks, its opening spreads as a dub of the actor's own speech does (or the
    scale is at its limit); these speakers needed scales differing by more than 1.5x to get there."""
    scales = []
    for actor in dev_clips:
        style = actor_style(model, crop_points(actor.landmarks, actor.meta["size"]), actor.valid, actor.mel, actor.times)
        shapes, silent, scale = predict(model, style, actor.mel, actor.times)
        assert scale == pytest.approx(1.0, abs=1e-4)
        own = float(np.std(opening(shapes)[~silent]))
        for speaker in dev_clips:
            if speaker is actor:
                continue
            shapes, silent, scale = predict(model, style, speaker.mel, speaker.times)
            spread = float(np.std(opening(shapes)[~silent]))
            if scale in SPEAKER_SCALE_LIMITS:
                assert spread < own if scale == SPEAKER_SCALE_LIMITS[0] else spread > own
            else:
                # Not exactly: the actor's offset while speaking and the lips stopping at closed come after the scale.
                assert spread == pytest.approx(own, rel=0.15), (actor.name, speaker.name)
            scales.append(scale)
    assert max(scales) / min(scales) > 1.5, scales


def test_while_speaking_the_mouth_sits_where_the_actors_does_and_never_closes_past_rest(model, dev_clips) -> None:
    """Style from one half of each clip, measured on the other: the predicted lips lie nearer the real ones than
    the actor's rest shape held does (the average speaker's mean opening is not this actor's); and with anyone's
    speech the lips stop at the actor's closed mouth, never passing through each other."""
    rows = [own_audio(model, clip) for clip in dev_clips]
    assert np.median([r["lmd"] for r in rows]) < 0.8 * np.median([r["lmd_rest"] for r in rows]), rows
    for actor in dev_clips:
        style = actor_style(model, crop_points(actor.landmarks, actor.meta["size"]), actor.valid, actor.mel, actor.times)
        for speaker in dev_clips:
            shapes = predict(model, style, speaker.mel, speaker.times)[0]
            assert (opening(shapes) >= opening(style.rest) - 1e-4).all(), (actor.name, speaker.name)


def test_silent_audio_gives_the_actors_rest_shape(plate: Path, tmp_path: Path, model) -> None:
    silent = tmp_path / "silence.wav"
    soundfile.write(silent, np.zeros(16000 * 4, np.float32), 16000)
    curves = shot_motion(plate, silent, model=model)
    assert curves.silent.all()
    np.testing.assert_array_equal(curves.shapes, np.broadcast_to(curves.rest, curves.shapes.shape))
    assert "calibrated on" in curves.style  # GRID has its own speech, and the mouth follows it


def test_curves_round_trip_through_json_and_csv(plate: Path, speech: Path, tmp_path: Path, model) -> None:
    curves = shot_motion(plate, speech, model=model)
    assert curves.opening.max() > 5 and not curves.silent.all()  # the speech moves the mouth
    for name in ("motion.json", "motion.csv"):
        back = read_curves(write_curves(tmp_path / name, curves), model)
        np.testing.assert_array_equal(back.frames, curves.frames)
        np.testing.assert_array_equal(back.silent, curves.silent)
        np.testing.assert_allclose(back.shapes, curves.shapes, atol=2e-3)
        np.testing.assert_allclose(back.opening, curves.opening, atol=2e-3)


def test_an_edited_opening_moves_the_shape(plate: Path, speech: Path, tmp_path: Path, model) -> None:
    curves = shot_motion(plate, speech, model=model)
    path = write_curves(tmp_path / "motion.json", curves)
    data = json.loads(path.read_text())
    data["frames"][10]["opening"] += 6.0
    path.write_text(json.dumps(data))
    back = read_curves(path, model)
    assert back.opening[10] == pytest.approx(curves.opening[10] + 6.0, abs=0.01)
    np.testing.assert_allclose(np.delete(back.shapes, 10, 0), np.delete(curves.shapes, 10, 0), atol=2e-3)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["frames"][3].__setitem__("opening", "wide"), "frames[3].opening"),
    (lambda d: d["frames"][5]["shape"].pop(), "frames[5].shape"),
    (lambda d: d.pop("rest"), "rest"),
    (lambda d: d.__setitem__("kind", "something"), "kind"),
    (lambda d: d["frames"][2].__setitem__("frame", d["frames"][1]["frame"]), "frames"),
    # Typing slips that would stretch the footage to no mouth at all: refused, not rendered.
    (lambda d: d["frames"][3].__setitem__("opening", 1e30), "frames[3].opening is 1e+30, past what a mouth can do"),
    (lambda d: d["frames"][4].__setitem__("width", -300), "frames[4].width is -300, past what a mouth can do: -256 to 256"),
    (lambda d: d["frames"][5]["shape"][0].__setitem__(1, 5000), "frames[5].shape[0][1] is 5000"),
    (lambda d: d["frames"][6].__setitem__("opening", 10**400), "frames[6].opening must be a finite number"),
])
def test_a_bad_curves_file_names_the_field(plate: Path, speech: Path, tmp_path: Path, model, edit, field) -> None:
    path = write_curves(tmp_path / "motion.json", shot_motion(plate, speech, model=model))
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(CurvesError, match=rf"motion.json: {re.escape(field)}"):
        read_curves(path, model)


def test_a_bad_csv_names_the_line(plate: Path, speech: Path, tmp_path: Path, model) -> None:
    path = write_curves(tmp_path / "motion.csv", shot_motion(plate, speech, model=model))
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(",", ";", 3)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CurvesError, match="line 5"):
        read_curves(path, model)
    write_curves(path, shot_motion(plate, speech, model=model))
    lines = path.read_text().splitlines()
    fields = lines[4].split(",")
    fields[2] = "300"  # typed for 3.00
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CurvesError, match="line 5 opening is 300, past what a mouth can do"):
        read_curves(path, model)


def test_sidecar_gain_and_keyed_corrections_change_exactly_the_frames_they_key(plate: Path, speech: Path, model) -> None:
    plain = shot_motion(plate, speech, model=model)
    first = int(plain.frames[0])
    shot = Shot.for_plate(plate)
    # "wider and more open at first+20..first+30", "closed at first+40"
    shot.motion = {
        "open": Keyframes([(first + 19, 0.0), (first + 20, 0.5), (first + 30, 0.5), (first + 31, 0.0), (first + 39, 0.0),
                           (first + 40, -1.0), (first + 41, 0.0)], "linear"),
        "wide": Keyframes([(first + 19, 0.0), (first + 20, 0.5), (first + 30, 0.5), (first + 31, 0.0)], "linear"),
    }
    shot.save()
    keyed = shot_motion(plate, speech, model=model)
    changed = np.flatnonzero(np.abs(keyed.shapes - plain.shapes).max(axis=(1, 2)) > 0) + first
    assert set(changed) <= set(range(first + 20, first + 31)) | {first + 40}
    assert set(range(first + 20, first + 31)) <= set(changed)
    assert (keyed.opening[20:31] > plain.opening[20:31]).all()
    assert (keyed.width[20:31] > plain.width[20:31]).all()
    assert keyed.opening[40] == pytest.approx(0.0, abs=1e-3)  # closed: the rest shape's opening

    shot.motion = {"gain": 0.0}
    shot.save()
    still = shot_motion(plate, speech, model=model)
    np.testing.assert_allclose(still.shapes, np.broadcast_to(still.rest, still.shapes.shape), atol=1e-4)


def test_sidecar_motion_controls_are_checked(plate: Path) -> None:
    sidecar = plate.with_name(plate.name + ".lipsync.json")
    for motion, field in (({"gain": 5}, "motion.gain"), ({"volume": 1}, "motion.volume"),
                          ({"open": {"keys": [[1, 3]]}}, r"motion.open.keys\[0\]\[1\]")):
        sidecar.write_text(json.dumps({"version": 1, "source": plate.name, "motion": motion}))
        with pytest.raises(ShotError, match=field):
            Shot.load(sidecar)


def test_motion_command_writes_curves_and_refuses_a_bad_output(plate: Path, speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "motion.csv"
    done = subprocess.run([sys.executable, "-m", "lipsync_core.cli", "motion", str(plate), str(speech), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "actor style calibrated on" in done.stdout and out.is_file()
    bad = tmp_path / "motion.txt"
    done = subprocess.run([sys.executable, "-m", "lipsync_core.cli", "motion", str(plate), str(speech), "-o", str(bad)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and ".json or .csv" in done.stderr and "Traceback" not in done.stderr
    assert not bad.exists()


def test_motion_training_resumes_exactly(dev_clips, tmp_path: Path) -> None:
    from lipsync_core.train.motion_trainer import train_motion

    train, dev = dev_clips[1:], dev_clips[:1]
    tiny = MotionConfig(components=4, width=16, dilations=(1, 2))
    whole = train_motion(train, dev, tmp_path / "whole", steps=6, batch=2, eval_every=3, config=tiny)
    train_motion(train, dev, tmp_path / "parts", steps=3, batch=2, eval_every=3, config=tiny)
    parts = train_motion(train, dev, tmp_path / "parts", steps=6, batch=2, eval_every=3, config=tiny)
    a, b = load_motion_model(whole), load_motion_model(parts)
    for key, value in a.net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), b.net.state_dict()[key].numpy(), err_msg=key)


def test_an_ensemble_predicts_the_average_of_its_members_and_refuses_models_trained_otherwise(dev_clips, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from lipsync_core.errors import LipSyncError, ModelError
    from lipsync_core.train.motion_trainer import MotionClip, average_gain, ensemble_motion, train_motion

    train, dev = dev_clips[1:], dev_clips[:1]
    tiny = MotionConfig(components=4, width=16, dilations=(1, 2))
    members = [train_motion(train, dev, tmp_path / f"seed{seed}", steps=3, batch=2, eval_every=3, seed=seed, config=tiny)
               for seed in (0, 1)]
    path = tmp_path / "ensemble.safetensors"
    ensemble_motion(members, train, dev, path)
    ensemble = load_motion_model(path)
    alone = [load_motion_model(m) for m in members]
    clip = dev[0]
    average = np.mean([m.predict(clip.mel, clip.times) for m in alone], axis=0)
    assert not np.allclose(alone[0].predict(clip.mel, clip.times), average, atol=1e-3)  # the seeds did differ
    np.testing.assert_allclose(ensemble.predict(clip.mel, clip.times), average, rtol=1e-5, atol=1e-5)
    # The average speaker's articulation is measured on the average, not taken from a member.
    np.testing.assert_allclose(ensemble.gain, average_gain(ensemble, [MotionClip.of(c) for c in train]), rtol=1e-6)
    assert [m["file"] for m in ensemble.facts["member_runs"]] == [str(m) for m in members]

    other = train_motion(train, dev, tmp_path / "narrower", steps=3, batch=2, eval_every=3,
                         config=MotionConfig(components=4, width=8, dilations=(1, 2)))
    with pytest.raises(LipSyncError, match="configured otherwise"):
        ensemble_motion([members[0], other], train, dev, tmp_path / "mixed.safetensors")
    with pytest.raises(LipSyncError, match="trained on other clips"):
        ensemble_motion(members, train[:1], dev, tmp_path / "other_cache.safetensors")
    with pytest.raises(LipSyncError, match="already an average"):
        ensemble_motion([path, members[0]], train, dev, tmp_path / "nested.safetensors")
    with pytest.raises(LipSyncError, match="refusing to write over the input"):
        ensemble_motion(members, train, dev, members[1])
    assert load_motion_model(members[1]).facts == alone[1].facts

    # A file whose networks are numbered with a gap is refused, not loaded with a network missing.
    tensors = load_file(str(path))
    broken = tmp_path / "broken.safetensors"
    save_file({k.replace("net.members.1.", "net.members.2."): v for k, v in tensors.items()}, str(broken),
              metadata=file_metadata(path))
    with pytest.raises(ModelError, match="do not fit"):
        load_motion_model(broken)


def test_the_correlation_loss_rewards_a_mouth_that_opens_when_the_real_one_does_whatever_its_scale() -> None:
    """The trainer's segment correlation: a prediction at another amplitude (which the actor's style rescales) costs
    nothing; the same motion a quarter second late costs; masked frames do not count; a held mouth is left out."""
    import torch

    from lipsync_core.train.motion_trainer import segment_correlation

    t = torch.linspace(0, 6.28, 100)
    truth = torch.sin(3 * t)[None].repeat(3, 1)
    truth[2] = 0.5  # a held mouth
    mask = torch.ones(3, 100)
    scaled = 0.3 * truth + 1.0
    late = torch.roll(truth, 6, dims=1)
    r, moving = segment_correlation(torch.stack([scaled[0], late[1], scaled[2]]), truth, mask)
    assert r[0] > 0.999 and r[1] < 0.8 and moving.tolist() == [1.0, 1.0, 0.0]
    broken = scaled.clone()
    broken[0, :20] = 50.0  # garbage where the mask is 0
    mask[0, :20] = 0
    assert segment_correlation(broken, truth, mask)[0][0] > 0.999
