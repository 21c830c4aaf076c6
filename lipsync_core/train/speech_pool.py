"""The speech pool of the sync regularizer: short speech that ships in resources/speech/ (licenses in
its README), so personalization can render the actor saying things the actor's clips never say.

Rebuild it (GRID corpus train-split clips of the shared media set, CC BY 4.0):
    python -m lipsync_core.train.speech_pool ../shared/data
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile
import torch

from ..errors import LipSyncError
from ..media.audio import SAMPLE_RATE, load_audio, log_mel, mel_windows
from .data import CACHE_FPS

SPEECH_DIR = Path(__file__).resolve().parents[2] / "resources" / "speech"


def load_speech_pool(width: int, folder: Path = SPEECH_DIR) -> dict[str, np.ndarray]:
    """File name -> the mel window of every 25 fps frame of it, (T, width, n_mels); sorted by name."""
    files = sorted(Path(folder).glob("*.flac"))
    if not files:
        raise LipSyncError(f"{folder}: no speech (.flac) for the sync regularizer")
    return {path.name: speech_windows(path, width) for path in files}


def joined_speech_pool(width: int, folder: Path = SPEECH_DIR) -> np.ndarray:
    """The whole pool end to end, (T, width, n_mels): other speech to dub dev clips with while training."""
    return np.concatenate(list(load_speech_pool(width, folder).values()))


def speech_windows(path: Path, width: int) -> np.ndarray:
    """The mel window of every 25 fps frame of a speech file, (T, width, n_mels)."""
    audio = load_audio(path)
    times = np.arange(int(len(audio) / SAMPLE_RATE * CACHE_FPS)) / CACHE_FPS
    return mel_windows(log_mel(audio), times, width)


class SpeechPool:
    """Draws runs of `length` consecutive frames' mel windows from random places of the pool."""

    def __init__(self, mels: list[np.ndarray], seed: int):
        self.mels = mels
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def windows(self, batch: int, length: int) -> torch.Tensor:
        """(batch, length, width, n_mels)."""
        out = []
        for _ in range(batch):
            mels = self.mels[int(self.rng.integers(len(self.mels)))]
            start = int(self.rng.integers(len(mels) - length + 1))
            out.append(mels[start : start + length])
        return torch.from_numpy(np.stack(out))


def make_speech_pool(data_dir: Path, out_dir: Path = SPEECH_DIR) -> list[Path]:
    """16 kHz mono FLAC of the GRID train-split clips in `data_dir`/manifest.csv."""
    with (data_dir / "manifest.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source_dataset"] == "GRID" and r["kind"] == "av" and r["split"] == "train"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row in rows:
        out = out_dir / f"grid_{Path(row['file']).stem.rsplit('_', 1)[-1]}.flac"
        soundfile.write(out, load_audio(data_dir / row["file"]), SAMPLE_RATE, subtype="PCM_16")
        written.append(out)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Rebuild resources/speech/ from the shared media set.")
    parser.add_argument("data_dir", type=Path, help="the shared media folder (holds manifest.csv)")
    for path in make_speech_pool(parser.parse_args().data_dir):
        print(path, f"{path.stat().st_size / 1024:.0f} KiB")
