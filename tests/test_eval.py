"""`lipsync eval` and its measures, on real footage from ../shared/data with known answers.

The sync-shift test uses the model-free mouth-opening/loudness correlation, not SyncNet: the SyncNet
being trained (runs/syncnet, step ~4000) finds the true offset of unseen (dev) clips in only 10-16 %
of windows, too weak for a robust assertion, and no trained SyncNet ships with the tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lipsync_core.cli import main as cli_main
from lipsync_core.errors import ModelError
from lipsync_core.evaluate import (
    follows_speech, frame_quality, lip_landmarks, lmd, load_models, mouth_loudness_r, paste_lower_face, static_mouth,
)
from lipsync_core.face.identity import load_identity_model
from lipsync_core.media.audio import mel_windows
from lipsync_core.models.actor import DEFAULT_MODEL
from lipsync_core.models.checkpoint import save_checkpoint
from lipsync_core.models.config import ModelConfig, get_config
from lipsync_core.models.stylelipsync import StyleLipSync
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train.data import CACHE_FPS
from lipsync_core.train.prepare import ClipSource, prepare_clip

# LRS2 speaker, 5.5 s, 160x160. Measured: mouth/loudness r of the real footage +0.42, of its static
# mouth -0.13; with the audio 6-10 frames early or late, -0.07 to -0.27.
CLIP = "av/smeetrs_video_demo_00004.mp4"
CLI_CLIP = "av/rizkiarm_evaluation_samples_GRID_brbk7n.mpg"  # 75 frames: the shortest real clip with speech
MEL_WIDTH = get_config("cpu").mel_window
TINY = ModelConfig(
    name="tiny", size=64, w_dim=32, channels={4: 32, 8: 32, 16: 32, 32: 16, 64: 8}, embed_dim=32, audio_width=32
)


@pytest.fixture(scope="module")
def clip(shared_data):
    return prepare_clip(ClipSource(shared_data / CLIP, None), get_config("cpu").size)


@pytest.fixture(scope="module")
def real_lips(clip) -> np.ndarray:
    return lip_landmarks(clip.crops)


def test_identical_videos_give_psnr_inf_ssim_1_lmd_0(clip, real_lips):
    copy = clip.crops.copy()
    quality = frame_quality(copy, clip.crops, clip.masks, clip.valid)
    assert quality["psnr_crop"] == math.inf and quality["psnr_lower_face"] == math.inf
    assert quality["ssim_crop"] == pytest.approx(1, abs=1e-5) and quality["ssim_lower_face"] == pytest.approx(1, abs=1e-5)
    assert quality["detail_lower_face"] == 1
    # The face mesh is run again on the copy (its first second), as on any candidate's frames.
    assert lmd(lip_landmarks(copy[:25]), real_lips[:25]) == 0


def test_audio_shifted_by_several_frames_lowers_the_sync_measure(clip, real_lips):
    def r(shift: int) -> float:
        return mouth_loudness_r(real_lips, mel_windows(clip.mel, clip.times + shift / CACHE_FPS, MEL_WIDTH))

    assert r(0) > 0.3
    for shift in (-8, 8):  # 0.32 s early or late
        assert r(shift) < r(0) - 0.2, shift


def test_static_mouth_scores_lower_than_the_real_footage(clip, real_lips):
    static = static_mouth(clip, int(np.flatnonzero(clip.valid)[0]))
    static_lips = lip_landmarks(static)
    mels = clip.mel_windows(MEL_WIDTH)
    assert mouth_loudness_r(static_lips, mels) < mouth_loudness_r(real_lips, mels) - 0.3
    # ...and it differs from the real frames on every image measure, while staying the same face.
    quality = frame_quality(static, clip.crops, clip.masks, clip.valid)
    assert 20 < quality["psnr_lower_face"] < quality["psnr_crop"] < math.inf
    assert quality["ssim_lower_face"] < quality["ssim_crop"] < 1
    assert 0 < lmd(static_lips, real_lips) < 15
    assert 0.7 < quality["detail_lower_face"] < 1.4  # real pixels, from another frame: as crisp as the footage


def test_a_blurred_lower_face_loses_detail_that_psnr_hardly_sees(clip):
    blurred = paste_lower_face(clip, np.stack([cv2.GaussianBlur(c, (0, 0), 1.0) for c in clip.crops]))
    quality = frame_quality(blurred, clip.crops, clip.masks, clip.valid)
    assert quality["psnr_lower_face"] > 30 and quality["detail_lower_face"] < 0.5


def test_follows_speech_measures_the_dub_against_the_new_and_the_original_audio(clip):
    model = load_models(DEFAULT_MODEL)[0]
    own = clip.mel_windows(MEL_WIDTH)
    same = follows_speech(model, [clip], own)
    assert same["cross_r"] == same["cross_r_original"] != 0  # dubbed with its own audio: one and the same measure
    # Speech shorter than the clip is repeated to its length; the original audio is then another signal.
    other = follows_speech(model, [clip], own[::-1][:40].copy())
    assert other["cross_r"] != other["cross_r_original"]
    assert -1 <= other["cross_r"] <= 1 and -1 <= other["cross_r_original"] <= 1


def test_a_model_file_without_syncnet_needs_one_named(tmp_path):
    path = tmp_path / "generator_only.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(TINY)}, TINY)
    with pytest.raises(ModelError, match="--syncnet"):
        load_models(path)


def test_eval_command_writes_the_report_with_baselines(shared_data, tmp_path, capsys):
    torch.manual_seed(0)
    model = tmp_path / "tiny.safetensors"
    save_checkpoint(model, {"generator": StyleLipSync(TINY), "syncnet": SyncNet(TINY)}, TINY)
    speech = Path(__file__).resolve().parents[1] / "resources" / "samples" / "dub_speech.wav"
    out = tmp_path / "report"
    code = cli_main(["eval", str(shared_data / CLI_CLIP), "--model", str(model), "--cross-audio", str(speech),
                     "-o", str(out), "--cache", str(tmp_path / "cache"), "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| real |" in printed and "| cross_audio |" in printed

    report = json.loads((out / "report.json").read_text())
    name = Path(CLI_CLIP).stem
    rows = report["clips"][name]
    assert list(rows) == ["real", "static", "model", "cross_audio_plate", "cross_audio_static", "cross_audio"]
    # The real footage against itself: PSNR inf (null in JSON), SSIM 1, LMD 0.
    assert rows["real"]["psnr_crop"] is None and rows["real"]["ssim_crop"] == pytest.approx(1, abs=1e-5)
    assert rows["real"]["lmd"] == 0
    assert rows["real"]["mouth_loudness_r"] > rows["static"]["mouth_loudness_r"]
    assert ("identity_sim" in rows["model"]) == (load_identity_model() is not None)
    assert report["mean"]["real"] == rows["real"]

    text = (out / "report.md").read_text()
    assert "not comparable with LSE-C / LSE-D numbers computed with the original" in text
    assert f"mouths/{name}.png" in text
    sheet = cv2.imread(str(out / "mouths" / f"{name}.png"))
    assert sheet.shape[0] == 4 * 2 * (TINY.size * 7 // 8 - TINY.size // 2)  # real, static, ours, ours + other speech
