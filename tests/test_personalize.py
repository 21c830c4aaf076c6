"""Per-actor personalization on a real clip (the bundled 3 s GRID sample shot), with a tiny random-weight
base model of the real architecture so the runs take seconds: the actor file is small, loads on top
of its base model (and only that one), changes the output, resumes after Ctrl-C, and `lipsync dub`
reads it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lipsync_core.cli import main
from lipsync_core.dub.pipeline import load_model
from lipsync_core.errors import LipSyncError, ModelError
from lipsync_core.evaluate import loudness, reconstruct
from lipsync_core.media.fingerprint import plate_fingerprint
from lipsync_core.models.actor import load_generator
from lipsync_core.models.checkpoint import file_metadata, save_checkpoint
from lipsync_core.models.config import ModelConfig
from lipsync_core.models.stylelipsync import StyleLipSync
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train.data import PreparedClip
from lipsync_core.train.personalize import clip_part, personalize, split_footage
from lipsync_core.train.prepare import ClipSource, prepare_clip
from lipsync_core.train.speech_pool import SPEECH_DIR, load_speech_pool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "grid_bbaf2n.mp4"
TINY = ModelConfig(name="tiny", size=32, w_dim=32, channels={4: 32, 8: 32, 16: 16, 32: 16},
                   syncnet_size=32, embed_dim=32, audio_width=32)


def make_base(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(path, {"generator": StyleLipSync(TINY), "syncnet": SyncNet(TINY)}, TINY, {"step": 0})
    return path


@pytest.fixture(scope="module")
def clip():
    return prepare_clip(ClipSource(SAMPLE, None), TINY.size)


def render(model: StyleLipSync, clip: PreparedClip, n: int = 8) -> torch.Tensor:
    """The first `n` frames generated with the clip's own audio."""
    part = PreparedClip(clip.name, clip.crops[:n], clip.masks[:n], clip.landmarks[:n], clip.valid[:n], clip.mel, clip.meta)
    return torch.from_numpy(reconstruct(model, part, clip.mel_windows(TINY.mel_window)[:n], 0)).float()


def test_speech_pool_ships_with_its_license_and_the_mouth_its_speakers_made():
    pool = load_speech_pool(TINY.mel_window)
    assert len(pool) >= 2
    assert all(s.mels.shape[1:] == (TINY.mel_window, 80) and len(s.mels) > 50 and s.mouth.shape == (len(s.mels), 2)
               for s in pool.values())
    assert sum(p.stat().st_size for p in SPEECH_DIR.iterdir()) < 2 * 2**20
    assert "CC BY 4.0" in (SPEECH_DIR / "README.md").read_text()
    # The mouth tracks line up with their speech: the mouth opens with loudness, and less so 3 frames off.
    r = lambda opening, mels: np.corrcoef(opening, loudness(mels))[0, 1]
    aligned = np.mean([r(s.mouth[:, 0], s.mels) for s in pool.values()])
    shifted = np.mean([r(s.mouth[3:, 0], s.mels[:-3]) for s in pool.values()])
    assert aligned > 0.4 and aligned > shifted + 0.1


def test_personalize_command_writes_a_small_actor_model_that_dub_loads(tmp_path, clip, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # keep the command to one thread, as the rest of the tests
    base = make_base(tmp_path / "base.safetensors", seed=0)
    actor = tmp_path / "actor.safetensors"
    assert main(["personalize", str(SAMPLE), "--frames", "5-74", "--base", str(base), "-o", str(actor),
                 "--steps", "4", "--rank", "4", "--device", "cpu", "--progress-json"]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert reports[0] == {"stage": "prepare", "done": 0, "total": 1}
    reader = [r["done"] for r in reports if r["stage"] == "reader"]  # fitting the actor's mouth reader comes first
    assert reader == list(range(1, reader[-1] + 1)) and reports.index(next(r for r in reports if r["stage"] == "train")) > len(reader)
    assert [r["done"] for r in reports if r["stage"] == "train"] == [1, 2, 3, 4]
    assert {"total", "loss", "sync", "regularizer", "cross"} <= reports[-1].keys()

    # Only decoder tensors, far fewer bytes than the base model, tied to the base by its hash.
    with safe_open(str(actor), framework="pt") as f:
        names = list(f.keys())
    assert names and all(n.split(".", 1)[1].startswith("decoder.") for n in names)
    assert any(n.startswith("low_rank.") for n in names)
    assert actor.stat().st_size < 0.35 * base.stat().st_size
    facts = json.loads(file_metadata(actor)["facts"])
    assert facts["footage"][0]["frames"] == 70  # frames 5-74 of the 25 fps clip
    # The clip is recorded for `dub --actor` to lend its mouths: where it is, and what it held (a moved or changed
    # clip is told apart by its fingerprint).
    assert facts["footage"][0]["appearance"] == {"path": str(SAMPLE), "relative": os.path.relpath(SAMPLE, tmp_path),
                                                 "frames": [5, 74], "fingerprint": plate_fingerprint(SAMPLE, (5, 74))}
    assert facts["steps_run"] == 4 and facts["sync_regularizer"] and facts["rank"] == 4
    assert {"dev_mse", "dev_opening_r"} <= facts["mouth_reader"].keys()  # fitted on the actor, measured on the held-out part
    assert set(facts["measures"]) == {"zero_shot", "personalized"}
    assert not (tmp_path / "actor.personalize" / "state.safetensors").exists()
    assert not (tmp_path / "actor.personalize" / "mouth_reader.safetensors").exists()  # fitted anew by the next run

    # Loads on top of the base model: encoders as the base's, decoder changed, output changed.
    base_model, _ = load_generator(base)
    personal, loaded_facts = load_generator(actor)
    assert loaded_facts["steps_run"] == 4 and loaded_facts["base"]["path"] == str(base)
    assert torch.equal(base_model.face_encoder.stem[0].weight, personal.face_encoder.stem[0].weight)
    assert facts["best_step"] > 0  # the held-out footage got better: the actor is not the base model
    change = (render(personal, clip) - render(base_model, clip)).abs()  # 0..255 levels
    assert change.mean() > 0.1 and change.max() >= 2

    # The dub pipeline's model loading reads actor files the same way.
    dub_model = load_model(actor, torch.device("cpu"))
    assert torch.equal(dub_model.decoder.blocks[-1].to_rgb.bias, personal.decoder.blocks[-1].to_rgb.bias)


def test_actor_refuses_a_different_base_model(tmp_path, clip):
    base = make_base(tmp_path / "base.safetensors", seed=0)
    actor = tmp_path / "actor.safetensors"
    personalize([clip], base, actor, steps=2, eval_every=1, rank=0, measure=False, reader_steps=20)
    with pytest.raises(ModelError, match="is an actor model"):
        personalize([clip], actor, tmp_path / "actor_of_actor.safetensors", steps=2)
    other = make_base(tmp_path / "other.safetensors", seed=1)
    with pytest.raises(ModelError, match="personalized from base model base.safetensors .* is a different model"):
        load_generator(actor, base=other)
    # The base model retrained in place: the actor no longer belongs to it.
    shutil.copy(other, base)
    with pytest.raises(ModelError, match="only works on top of the exact base model"):
        load_generator(actor)
    base.unlink()
    with pytest.raises(ModelError, match="which is not found"):
        load_generator(actor)


def test_cancelled_run_leaves_no_actor_file_and_resumes_where_it_stopped(tmp_path, clip):
    base = make_base(tmp_path / "base.safetensors", seed=0)
    options = dict(steps=4, eval_every=1, rank=2, measure=False, patience=None, reader_steps=20)
    straight = personalize([clip], base, tmp_path / "straight.safetensors", **options)

    actor = tmp_path / "actor.safetensors"

    def ctrl_c_at_step_3(step, model):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        personalize([clip], base, actor, on_eval=ctrl_c_at_step_3, **options)
    assert not actor.exists() and not list(tmp_path.glob("*.tmp"))
    assert (tmp_path / "actor.personalize" / "state.safetensors").exists()

    checks = []
    resumed = personalize([clip], base, actor, on_eval=lambda step, model: checks.append(step), **options)
    assert checks == [3, 4]  # the state saved at step 2's check
    assert resumed["best_step"] == straight["best_step"]
    with safe_open(str(actor), framework="pt") as a, safe_open(str(tmp_path / "straight.safetensors"), framework="pt") as b:
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in b.keys())


def test_footage_too_short_is_refused_and_leaves_no_run_folder(tmp_path, clip):
    base = make_base(tmp_path / "base.safetensors", seed=0)
    with pytest.raises(LipSyncError, match="personalization needs at least"):
        personalize([clip_part(clip, 0, 10)], base, tmp_path / "actor.safetensors", steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.safetensors"]


def test_held_out_part_is_the_end_of_each_clip(clip):
    train, held = split_footage(clip)
    assert len(train) + len(held) == len(clip) and len(train) % 5 == 0
    assert 0.15 <= len(held) / len(clip) <= 0.3
    np.testing.assert_array_equal(held.crops[0], clip.crops[len(train)])
    # The held-out part's audio lines up with its frames (from the first frame whose 0.2 s window lies inside it).
    np.testing.assert_array_equal(held.mel_windows(16)[3:], clip.mel_windows(16)[len(train) + 3 :])
