"""The speech pool of the sync regularizer: short speech that ships in resources/speech/ (licenses in
its README), so personalization can render the actor saying things the actor's clips never say.
Beside each `<name>.flac` lies `<name>.mouth.csv`: the mouth the speaker made, frame by frame at 25 fps
(`data.mouth_shape`, measured with the face mesh on the clip's video), so the regularizer can check
that the actor's rendered mouth makes it too.

Rebuild it (GRID corpus train-split clips of the shared media set, CC BY 4.0):
    python -m lipsync_core.train.speech_pool ../shared/data
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from ..errors import LipSyncError
from ..media.audio import SAMPLE_RATE, load_audio, log_mel, mel_windows
from .data import CACHE_FPS, mouth_shape
from .prepare import ClipSource, prepare_clip

SPEECH_DIR = Path(__file__).resolve().parents[2] / "resources" / "speech"
MOUTH_COLUMNS = "opening,width"
MOUTH_TRACK_CROP = 128  # crop size the mouth is measured at (the measure is relative to the eyes' distance)


@dataclass
class Speech:
    mels: np.ndarray  # (T, width, n_mels) the mel window of every 25 fps frame
    mouth: np.ndarray  # (T, 2) the speaker's mouth at those frames (`data.mouth_shape`)


def load_speech_pool(width: int, folder: Path = SPEECH_DIR) -> dict[str, Speech]:
    """File name -> its speech; sorted by name."""
    files = sorted(Path(folder).glob("*.flac"))
    if not files:
        raise LipSyncError(f"{folder}: no speech (.flac) for the sync regularizer")
    return {path.name: load_speech(path, width) for path in files}


def load_speech(path: Path, width: int) -> Speech:
    """A speech file and its mouth track, cut to the frames both cover."""
    track = path.with_suffix(".mouth.csv")
    if not track.exists():
        raise LipSyncError(f"{track}: missing; every speech file of the pool needs the mouth its speaker made "
                           f"(rebuild the pool from the videos: python -m lipsync_core.train.speech_pool DATA_DIR)")
    mouth = np.loadtxt(track, np.float32, delimiter=",", skiprows=1, ndmin=2)
    mels = speech_windows(path, width)
    n = min(len(mels), len(mouth))
    return Speech(mels[:n], mouth[:n])


def joined_speech_pool(width: int, folder: Path = SPEECH_DIR) -> np.ndarray:
    """The whole pool end to end, (T, width, n_mels): other speech to dub dev clips with while training."""
    return np.concatenate([s.mels for s in load_speech_pool(width, folder).values()])


def speech_windows(path: Path, width: int) -> np.ndarray:
    """The mel window of every 25 fps frame of a speech file, (T, width, n_mels)."""
    audio = load_audio(path)
    times = np.arange(int(len(audio) / SAMPLE_RATE * CACHE_FPS)) / CACHE_FPS
    return mel_windows(log_mel(audio), times, width)


class SpeechPool:
    """Draws runs of `length` consecutive frames' speech from random places of the pool."""

    def __init__(self, speech: list[Speech], seed: int):
        self.speech = speech
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def windows(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mel windows (batch, length, width, n_mels) and the mouth they were spoken with (batch, length, 2)."""
        mels, mouths = [], []
        for _ in range(batch):
            speech = self.speech[int(self.rng.integers(len(self.speech)))]
            start = int(self.rng.integers(len(speech.mels) - length + 1))
            mels.append(speech.mels[start : start + length])
            mouths.append(speech.mouth[start : start + length])
        return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(mouths))


def make_speech_pool(data_dir: Path, out_dir: Path = SPEECH_DIR) -> list[Path]:
    """16 kHz mono FLAC of the GRID train-split clips in `data_dir`/manifest.csv, each with its mouth track."""
    with (data_dir / "manifest.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source_dataset"] == "GRID" and r["kind"] == "av" and r["split"] == "train"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row in rows:
        video = data_dir / row["file"]
        out = out_dir / f"grid_{video.stem.rsplit('_', 1)[-1]}.flac"
        soundfile.write(out, load_audio(video), SAMPLE_RATE, subtype="PCM_16")
        mouth = mouth_shape(prepare_clip(ClipSource(video, None), MOUTH_TRACK_CROP))
        np.savetxt(out.with_suffix(".mouth.csv"), mouth, "%.4f", ",", header=MOUTH_COLUMNS, comments="")
        written += [out, out.with_suffix(".mouth.csv")]
    return written



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Rebuild resources/speech/ from the shared media set.")
    parser.add_argument("data_dir", type=Path, help="the shared media folder (holds manifest.csv)")
    for path in make_speech_pool(parser.parse_args().data_dir):
        print(path, f"{path.stat().st_size / 1024:.0f} KiB")
