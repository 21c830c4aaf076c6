"""Fixtures for the host-adapter tests (Nuke, Resolve, timeline): a tiny random-weight model and a
real clip in a folder of its own. Import them into a test module by name:

    from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)

The model draws nonsense inside the mask, which is all an adapter test needs: that the adapter's
render went through the core, to the right frames, files and audio.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lipsync_core.models.checkpoint import save_checkpoint
from lipsync_core.models.config import ModelConfig
from lipsync_core.models.stylelipsync import StyleLipSync

CLIP = "av/rizkiarm_evaluation_samples_GRID_brbk7n.mpg"  # 75 frames (0-74), 360x288, 25 fps
DUB = "av/rizkiarm_evaluation_samples_GRID_lbax4n.mpg"  # another speaker, another sentence: its audio is the dub
TINY = ModelConfig(
    name="tiny", size=64, w_dim=32, channels={4: 32, 8: 32, 16: 32, 32: 16, 64: 8}, embed_dim=32, audio_width=32
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(TINY)}, TINY)
    return path


@pytest.fixture(scope="module")
def plate(shared_data, tmp_path_factory) -> Path:
    """The real clip in a folder of its own (its face-track cache lands beside it)."""
    path = tmp_path_factory.mktemp("shot") / "plate.mpg"
    shutil.copy(shared_data / CLIP, path)
    return path


@pytest.fixture(scope="module")
def dub_audio(shared_data) -> Path:
    return shared_data / DUB
