"""Fixtures shared by every test: the real media set beside the repository."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real talking-face media (`../shared/data` beside the repository); skips when absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real test media not found at {SHARED_DATA} (expected ../shared/data beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def manifest(shared_data: Path) -> list[dict[str, str]]:
    """Rows of shared/data/manifest.csv (file, paired_audio, kind, split, duration_s, fps, resolution, audio, ...)."""
    with open(shared_data / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(autouse=True, scope="session")
def own_config_dir(tmp_path_factory):
    """Every render signs its output: the local signing identity goes to a folder of the test session's own,
    never the real home folder, and no key configured in the environment is used."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LIPSYNC_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    patch.delenv("LIPSYNC_C2PA_KEY", raising=False)
    patch.delenv("LIPSYNC_C2PA_CERT", raising=False)
    yield
    patch.undo()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small workloads: OpenMP threads on a busy 2-core machine mostly
    wait on each other, and one thread keeps the timings of these tests steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
