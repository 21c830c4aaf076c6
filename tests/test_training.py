"""The trainers: resuming gives the run an uninterrupted one would have given, and the loss falls.

These run on synthetic clips in the PreparedClip format (a drawn face whose mouth opens and closes
with the loudness of a synthetic log-mel) and a tiny config of the same architecture (32 px): they
test the training loop, its state files and its log, not what the model learns from real faces.
The real-clip version comes with the prepare step.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lipsync_core.media.audio import MEL_FPS, MEL_SILENCE
from lipsync_core.errors import ModelError
from lipsync_core.models.checkpoint import load_widened, read_metadata, save_checkpoint
from lipsync_core.models.config import ModelConfig
from lipsync_core.models.stylelipsync import StyleLipSync, footage_input
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.face.landmarks import INNER_LIP_BOTTOM, INNER_LIP_TOP, LEFT_EYE_CORNERS, LIPS, RIGHT_EYE_CORNERS
from lipsync_core.train.data import CACHE_FPS, PreparedClip, WindowSampler, mouth_shape
from lipsync_core.train import generator_trainer
from lipsync_core.train.generator_trainer import WINDOW, train_generator
from lipsync_core.train.log import RunLog
from lipsync_core.train.mouth_reader import cross_audio_targets, load_mouth_reader, train_mouth_reader
from lipsync_core.train.syncnet_trainer import train_syncnet

TINY = ModelConfig(
    name="tiny",
    size=32,
    w_dim=32,
    channels={4: 32, 8: 32, 16: 16, 32: 16},
    syncnet_size=32,
    embed_dim=32,
    audio_width=32,
)


def synthetic_clip(name: str, frames: int, size: int = 32, phase: float = 0.0, split: str = "train") -> PreparedClip:
    """A smooth face-like sequence: skin ellipse on a gradient, two eyes, a mouth whose opening follows
    the loudness of the clip's log-mel (low bands), so picture and sound carry the same signal."""
    t = np.arange(frames) / CACHE_FPS
    opening = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t + phase) * np.sin(2 * np.pi * 0.37 * t + 1 + phase)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = np.stack([0.3 + 0.4 * yy, 0.35 + 0.2 * xx, 0.5 - 0.2 * yy], -1)
    face = ((xx - 0.5) / 0.34) ** 2 + ((yy - 0.52) / 0.44) ** 2 < 1
    eyes = (((xx - 0.36) / 0.07) ** 2 + ((yy - 0.4) / 0.035) ** 2 < 1) | (((xx - 0.64) / 0.07) ** 2 + ((yy - 0.4) / 0.035) ** 2 < 1)
    crops = np.empty((frames, size, size, 3), np.uint8)
    landmarks = np.full((frames, 478, 2), size / 2, np.float32)
    angles = np.linspace(0, 2 * np.pi, len(LIPS), endpoint=False)
    for i, o in enumerate(opening):
        h = 0.02 + 0.08 * o
        mouth = ((xx - 0.5) / 0.14) ** 2 + ((yy - 0.72) / h) ** 2
        img = background.copy()
        img[face] = (0.85, 0.65, 0.55)
        img[eyes] = (0.15, 0.1, 0.1)
        # Soft-edged mouth: dark inside, lips around it.
        img = np.where((mouth < 1)[..., None], (0.25, 0.05, 0.08), img)
        img = np.where(((mouth >= 1) & (mouth < 1.8))[..., None], (0.7, 0.3, 0.3), img)
        crops[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
        landmarks[i, LIPS, 0] = size * (0.5 + 0.14 * np.cos(angles))
        landmarks[i, LIPS, 1] = size * (0.72 + h * np.sin(angles))
        landmarks[i, [INNER_LIP_TOP, INNER_LIP_BOTTOM]] = np.array([[0.5, 0.72 - h], [0.5, 0.72 + h]]) * size
    landmarks[:, [RIGHT_EYE_CORNERS[0], LEFT_EYE_CORNERS[0]]] = np.array([[0.29, 0.4], [0.71, 0.4]]) * size
    masks = np.zeros((frames, size, size), np.uint8)
    masks[:, size // 2 :, size // 6 : size - size // 6] = 255
    # Log-mel at 80 frames/s: silence floor plus low-band energy following the mouth.
    mel_t = np.arange(int(frames / CACHE_FPS * MEL_FPS)) / MEL_FPS
    loud = np.interp(mel_t, t, opening)
    bands = np.exp(-np.arange(80) / 20.0)
    mel = (MEL_SILENCE + 6 * loud[:, None] * bands[None, :]).astype(np.float32)
    return PreparedClip(name, crops, masks, landmarks, np.ones(frames, bool), mel, {"split": split})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips() -> tuple[list[PreparedClip], list[PreparedClip]]:
    return [synthetic_clip("train-a", 40)], [synthetic_clip("dev-a", 30, phase=1.0, split="dev")]


@pytest.fixture(scope="module")
def syncnet_file(tmp_path_factory) -> Path:
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("syncnet") / "syncnet.safetensors"
    save_checkpoint(path, {"syncnet": SyncNet(TINY)}, TINY, {"step": 0})
    return path


def test_synthetic_clip_is_usable(clips) -> None:
    train, _ = clips
    clip = train[0]
    assert clip.crops.shape == (40, 32, 32, 3) and clip.mel.shape == (128, 80)
    b = WindowSampler(train, WINDOW, TINY.mel_window, 0).windows(2)
    assert b["frames"].shape == (2, WINDOW, 3, 32, 32) and b["mels"].shape == (2, WINDOW, 16, 80)
    assert b["weights"].max() > 5  # the mouth box is weighted up
    # The mouth really moves: consecutive frames differ in the lower half, not in the upper.
    diff = np.abs(np.diff(clip.crops.astype(np.int16), axis=0)).mean(axis=(0, 3))
    assert diff[16:].mean() > 1 and diff[:14].max() == 0


def test_mouth_targets_follow_the_lips_and_references_contrast_them(clips) -> None:
    train, _ = clips
    clip = train[0]
    shape = mouth_shape(clip)
    # The synthetic mouth opens with `h`: the opening target rises and falls with the lip landmarks.
    gap = clip.landmarks[:, INNER_LIP_BOTTOM, 1] - clip.landmarks[:, INNER_LIP_TOP, 1]
    assert np.corrcoef(shape[:, 0], gap)[0, 1] > 0.99
    assert abs(np.median(shape[:, 0])) < 1e-6  # the clip's own resting mouth is the zero
    # References are picked to differ in mouth from the window: more than a random far frame does.
    sampler = WindowSampler([clip], WINDOW, TINY.mel_window, 0)
    mids = sampler.rng.choice(sampler.starts[0], 200) + WINDOW // 2
    picked = np.mean([abs(shape[sampler._reference(0, m - WINDOW // 2), 0] - shape[m, 0]) for m in mids])
    rng = np.random.default_rng(0)
    far = [rng.choice([f for f in range(len(clip)) if abs(f - m) >= 5]) for m in mids]
    assert picked > 1.5 * np.mean(np.abs(shape[far, 0] - shape[mids, 0]))


def test_mouth_reader_reads_the_mouth_off_the_frames(clips, tmp_path: Path) -> None:
    train, dev = clips
    measures = train_mouth_reader(train, dev, tmp_path / "reader.safetensors", TINY, steps=300, batch=32)
    assert measures["dev_opening_r"] > 0.9, measures  # on frames it never saw
    reader = load_mouth_reader(tmp_path / "reader.safetensors", TINY, torch.device("cpu"))
    assert not any(p.requires_grad for p in reader.parameters())


def test_cross_audio_render_is_the_window_rendered_with_the_next_windows_speech(clips) -> None:
    train, _ = clips
    torch.manual_seed(0)
    readout = generator_trainer.MouthReadout(StyleLipSync(TINY)).eval()
    b = WindowSampler(train, WINDOW, TINY.mel_window, 0).windows(3)
    masked = generator_trainer.masked_input(b["frames"], b["masks"])
    with torch.no_grad():
        own, mouth, other = readout(masked, b["masks"], b["ref"], b["mels"], cross=True)
        alone, mouth_alone, none = readout(masked, b["masks"], b["ref"], b["mels"])
        swapped = readout.generator(masked, b["masks"], b["ref"], b["mels"].roll(1, 0))
    assert none is None and torch.allclose(own, alone, atol=1e-5) and torch.equal(mouth, mouth_alone)
    assert torch.allclose(other, swapped, atol=1e-5) and not torch.allclose(other, own, atol=1e-3)
    # Its target: the window's own resting mouth, moved as the other window's speaker moved.
    target = cross_audio_targets(b)
    assert torch.allclose(target[1] - b["mouth_rest"][1], b["mouth"][0])


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def read_log(run_dir: Path) -> list[dict]:
    """The run's log without its wall-clock times."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def assert_same_files(a: Path, b: Path, name: str) -> None:
    ta, tb = read_tensors(a / name), read_tensors(b / name)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:5]}"


def test_generator_resume_matches_uninterrupted_run(clips, syncnet_file: Path, tmp_path: Path) -> None:
    train, dev = clips
    steps = 8
    kwargs = dict(syncnet_path=syncnet_file, batch=2, lr=2e-3, sync_start=2, seed=3, save_every=2, eval_every=4, reader_steps=20,
                  lambda_adv=0.1)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_generator(train, dev, whole, TINY, steps=steps, **kwargs)
    train_generator(train, dev, split, TINY, steps=steps // 2, **kwargs)
    # The interrupted run's log and state stop at the half.
    assert [r["step"] for r in read_log(split)] == list(range(1, steps // 2 + 1))
    train_generator(train, dev, split, TINY, steps=steps, **kwargs)

    log = read_log(whole)
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    assert "sync" not in log[1] and "sync" in log[2]  # the sync loss joins after sync_start
    assert "dev_l1" in log[3] and "dev_l1" in log[7]
    assert all({"adversarial", "discriminator"} <= r.keys() for r in log)  # the discriminator trains alongside
    assert read_log(split) == log  # bit-exact losses, step by step
    assert_same_files(whole, split, "state.safetensors")  # weights, EMA, Adam moments, RNG
    assert_same_files(whole, split, "model.safetensors")  # the shipped EMA generator + SyncNet
    config, facts = read_metadata(split / "model.safetensors")
    assert config == TINY and facts["step"] == steps and facts["data"] == ["train-a"]

    # A new run continuing this model file counts its steps on and records how it was made.
    more = tmp_path / "more"
    train_generator(train, dev, more, TINY, steps=2, init_from=split / "model.safetensors", **kwargs)
    facts = read_metadata(more / "model.safetensors")[1]
    assert facts["step"] == 2 and facts["total_steps"] == steps + 2
    assert facts["recipe"]["init"] == "model.safetensors" and facts["recipe"]["lambda_mouth"] == 1.0


def test_generator_resume_after_an_interruption_between_saves(clips, syncnet_file: Path, tmp_path: Path, monkeypatch) -> None:
    """Stopped (Ctrl-C) after step 5 with the last state saved at step 4: the resumed run drops the logged
    step 5, redoes it and ends where an uninterrupted run does."""
    train, dev = clips
    steps = 8
    kwargs = dict(syncnet_path=syncnet_file, batch=2, lr=2e-3, sync_start=2, seed=3, save_every=2, eval_every=4, reader_steps=20)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_generator(train, dev, whole, TINY, steps=steps, **kwargs)

    class InterruptedLog(RunLog):
        def write(self, record: dict) -> None:
            super().write(record)
            if record["step"] == 5:
                raise KeyboardInterrupt

    monkeypatch.setattr(generator_trainer, "RunLog", InterruptedLog)
    with pytest.raises(KeyboardInterrupt):
        train_generator(train, dev, cut, TINY, steps=steps, **kwargs)
    monkeypatch.undo()
    assert [r["step"] for r in read_log(cut)] == [1, 2, 3, 4, 5]
    train_generator(train, dev, cut, TINY, steps=steps, **kwargs)
    assert read_log(cut) == read_log(whole)
    assert_same_files(whole, cut, "state.safetensors")
    assert_same_files(whole, cut, "model.safetensors")


def test_best_file_keeps_the_step_that_follows_other_speech_best_across_a_resume(clips, tmp_path: Path, monkeypatch) -> None:
    """The selection logic: measured scores are scripted (the synthetic faces have no face mesh); the
    best file must hold the EMA weights of the best-scoring evaluation, also when that score was
    measured before an interruption."""
    train, dev = clips
    scores = iter([0.10, 0.30, 0.20, 0.25])  # evaluations at steps 2, 4 | resumed: 6, 8
    monkeypatch.setattr(generator_trainer, "follows_speech",
                        lambda model, clips, speech: {"cross_r": next(scores), "cross_r_original": 0.0})
    speech = np.zeros((10, TINY.mel_window, TINY.n_mels), np.float32)
    kwargs = dict(syncnet_path=None, batch=2, lr=2e-3, seed=3, save_every=2, eval_every=2, select_speech=speech, lambda_cross=0)
    returned = train_generator(train, dev, tmp_path, TINY, steps=4, **kwargs)
    assert returned == tmp_path / "best.safetensors"
    at_step_4 = read_tensors(tmp_path / "model.safetensors")
    train_generator(train, dev, tmp_path, TINY, steps=8, **kwargs)

    log = read_log(tmp_path)
    assert [r.get("dev_cross_r") for r in log if "dev_cross_r" in r] == [0.10, 0.30, 0.20, 0.25]
    facts = read_metadata(tmp_path / "best.safetensors")[1]
    assert facts["selected"] == {"dev_cross_r": 0.30, "step": 4} and facts["step"] == 4
    best = read_tensors(tmp_path / "best.safetensors")
    assert all(torch.equal(best[k], at_step_4[k]) for k in best)
    last = read_tensors(tmp_path / "model.safetensors")
    assert any(not torch.equal(best[k], last[k]) for k in best)


def test_generator_loss_goes_down(clips, tmp_path: Path) -> None:
    train, dev = clips
    train_generator(train, dev, tmp_path, TINY, steps=30, syncnet_path=None, batch=4, lr=2e-3, seed=0,
                    save_every=30, eval_every=15, reader_steps=20)
    log = read_log(tmp_path)
    l1 = np.array([r["l1"] for r in log])
    first, last = l1[:5].mean(), l1[-5:].mean()
    assert last < 0.7 * first, (first, last)
    # The audio codes learn to carry the mouth shape (on the fixed dev windows: one batch is too noisy).
    assert log[-1]["dev_mouth"] < 0.8 * log[14]["dev_mouth"]
    # Held-out clip (same drawing, other mouth motion): better at step 30 than at step 15.
    assert log[-1]["dev_l1"] < log[14]["dev_l1"] < first
    assert (tmp_path / "losses.png").is_file() and (tmp_path / "model.safetensors").is_file()


def test_syncnet_resume_matches_uninterrupted_run(clips, tmp_path: Path) -> None:
    train, dev = clips
    steps = 8
    kwargs = dict(batch=4, lr=1e-3, seed=2, eval_every=4, patience=10)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_syncnet(train, dev, whole, TINY, steps=steps, **kwargs)
    train_syncnet(train, dev, split, TINY, steps=steps // 2, **kwargs)
    train_syncnet(train, dev, split, TINY, steps=steps, **kwargs)
    log = read_log(whole)
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    assert "dev_offset_accuracy" in log[3] and "dev_offset_accuracy" in log[7]
    assert read_log(split) == log
    assert_same_files(whole, split, "state.safetensors")
    assert_same_files(whole, split, "syncnet.safetensors")


@pytest.fixture(scope="module")
def real_clips(shared_data: Path) -> tuple[list[PreparedClip], list[PreparedClip]]:
    """One short real GRID clip through the real prepare step (tracking, alignment, masks, mel) at the
    tiny config's size: its first 2 s to train on, its last second to measure on."""
    from lipsync_core.train.prepare import ClipSource, prepare_clip

    clip = prepare_clip(ClipSource(shared_data / "av" / "rizkiarm_evaluation_samples_GRID_bbaf2n.mpg", None), TINY.size)
    assert clip.valid.all() and clip.mel.shape[1] == 80
    cut = 50

    def part(frames: slice, split: str) -> PreparedClip:
        mel = slice(int(frames.start * MEL_FPS / CACHE_FPS), None if frames.stop is None else int(frames.stop * MEL_FPS / CACHE_FPS))
        return PreparedClip(f"grid-{split}", clip.crops[frames], clip.masks[frames], clip.landmarks[frames],
                            clip.valid[frames], clip.mel[mel], {"split": split})

    return [part(slice(0, cut), "train")], [part(slice(cut, None), "dev")]


def test_real_clip_training_learns_and_resumes(real_clips, tmp_path: Path) -> None:
    """A few steps on a real clip: the held-out loss falls, and a run stopped halfway and resumed ends
    with the same log and the same state as one that ran straight through."""
    train, dev = real_clips
    kwargs = dict(syncnet_path=None, batch=4, lr=2e-3, seed=0, save_every=10, eval_every=10, reader_steps=50)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_generator(train, dev, whole, TINY, steps=30, **kwargs)
    log = read_log(whole)
    dev_l1 = [r["dev_l1"] for r in log if "dev_l1" in r]
    assert len(dev_l1) == 3 and dev_l1[-1] < dev_l1[0] < log[0]["l1"], dev_l1

    train_generator(train, dev, split, TINY, steps=20, **kwargs)
    assert read_log(split)[-1]["step"] == 20
    train_generator(train, dev, split, TINY, steps=30, **kwargs)
    assert read_log(split) == log
    assert_same_files(whole, split, "state.safetensors")


TINY_FOOTAGE = replace(TINY, name="tiny_footage", footage=True)


def test_the_footage_renderer_starts_as_its_generator_then_learns_and_resumes(real_clips, tmp_path: Path) -> None:
    """The footage path's renderer, widened from a generator of the same numbers, first draws exactly what that
    generator draws (its new inputs and its confidence start at zero); trained on a real clip with frames of the clip
    warped onto each window, its held-out loss falls, and a run stopped and resumed ends as one run straight through."""
    train, dev = real_clips
    torch.manual_seed(0)
    generator = StyleLipSync(TINY).eval()
    start = tmp_path / "generator.safetensors"
    save_checkpoint(start, {"generator": generator}, TINY)
    renderer = StyleLipSync(TINY_FOOTAGE).eval()
    load_widened(start, "generator", renderer, TINY_FOOTAGE)
    crops = torch.rand(2, 3, 32, 32) * 2 - 1
    masks, mels, ref = torch.rand(2, 1, 32, 32), torch.rand(1, 2, 16, 80), torch.rand(1, 3, 32, 32)
    footage = footage_input(torch.rand(2, 3, 32, 32) * 2 - 1, torch.ones(2, 1, 32, 32))
    with torch.no_grad():
        codes = generator.codes(ref, mels)[0]
        drawn = renderer.decode(crops, masks, ref.expand(2, -1, -1, -1), codes, footage)
        # Equal to the rounding of the stem's weight scale (its fan-in grew).
        assert torch.allclose(drawn[:, :3], generator.decode(crops, masks, ref.expand(2, -1, -1, -1), codes), atol=1e-5)
    assert torch.equal(drawn[:, 3], torch.zeros_like(drawn[:, 3]))  # confidence one half: learnt, not built in

    kwargs = dict(syncnet_path=None, batch=4, lr=2e-3, seed=0, save_every=10, eval_every=10, lambda_cross=0.0,
                  init_from=start)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_generator(train, dev, whole, TINY_FOOTAGE, steps=30, **kwargs)
    log = read_log(whole)
    dev_loss = [r["dev_loss"] for r in log if "dev_loss" in r]
    assert len(dev_loss) == 3 and dev_loss[-1] < dev_loss[0], dev_loss
    assert all("texture" in r and "distrust" in r for r in log)
    train_generator(train, dev, split, TINY_FOOTAGE, steps=20, **kwargs)
    train_generator(train, dev, split, TINY_FOOTAGE, steps=30, **kwargs)
    assert read_log(split) == log
    assert_same_files(whole, split, "state.safetensors")


def test_a_model_of_other_numbers_cannot_start_the_renderer(tmp_path: Path) -> None:
    path = tmp_path / "generator.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(TINY)}, TINY)
    other = replace(TINY_FOOTAGE, w_dim=16)
    with pytest.raises(ModelError, match="numbers differ"):
        load_widened(path, "generator", StyleLipSync(other), other)
