"""The motion model: speech -> the mouth shape of every frame (coefficients of `motion.shape.ShapeBasis`).

A dilated 1D convolution stack over the whole log-mel sequence at its own rate (80 frames/s); the
output is read at each video frame's time, so any frame rate works and a long shot costs one pass.
Its receptive field, 0.84 s, lets it learn co-articulation and the lips moving before the sound.

Speaker independence: a dub is another voice at another level, often through another microphone.
`speech_features` takes out what should not matter before the network sees it: the level (relative
to the utterance's own loud frames), noise below the speech (a gate relative to that level), and the
average spectrum of the voice and channel (each mel band less its mean over the speech).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import ModelError
from ..media.audio import MEL_FPS, MEL_SILENCE, N_MELS
from ..motion.shape import ShapeBasis
from .checkpoint import check_finite, file_metadata
from .layers import ShareDropout

MOTION_FORMAT = "lipsync-motion-1"
DEFAULT_MOTION_MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "motion.safetensors"

# Levels in log-mel units (1 unit = 12.5 dB, see media.audio).
LOUD_PERCENTILE = 95  # the utterance's loud level: most frames of speech lie below it
GATE_BELOW_LOUD = 3.0  # everything quieter than 37 dB under the loud level reads as the same floor
SILENT_BELOW_LOUD = 1.6  # frames 20 dB under the loud level are silence...
SILENT_LEVEL = MEL_SILENCE + 1.0  # ...and so is anything near digital silence, whatever the loud level
MIN_SILENCE_S = 0.25  # shorter pauses are part of speech: the mouth need not close
# Lips part a little before the sound starts and close a little after it stops: the gate closes this late, over
# a ramp of the same length. One frame at 25 fps: 0.06 s on both sides left the mouth open on the first and last
# frames of pauses (86% of pause frames at rest on the dev split against 94%, opening r unchanged).
GATE_LEAD_S = 0.04
# ...and opens this early: the model, trained on real speech, moves the lips ahead of the sound (a speaker parts
# them on the breath before the first word), and a gate that opens at the sound cuts that off. Measured on the dev
# split (own audio r / other speech r / pause frames at rest): 0.04 s 0.472 / 0.514 / 94%; 0.06 s 0.486 / 0.524 /
# 92%; 0.08 s 0.493 / 0.524 / 90%; 0.16 s 0.494 / 0.524 / 82%.
ONSET_LEAD_S = 0.06


def frame_levels(mel: np.ndarray) -> tuple[np.ndarray, float]:
    """Each mel frame's level and the utterance's loud level."""
    levels = mel.mean(axis=1)
    audible = levels[levels > SILENT_LEVEL]
    return levels, float(np.percentile(audible, LOUD_PERCENTILE)) if len(audible) else MEL_SILENCE


def speech_features(mel: np.ndarray) -> np.ndarray:
    """(T, 80) log-mel (media.audio.log_mel) -> (T, 81) the network's input: the gated mel less the speech's
    mean spectrum, and each frame's level relative to the loud level."""
    levels, loud = frame_levels(mel)
    gated = np.maximum(mel, loud - GATE_BELOW_LOUD)
    speech = levels > loud - SILENT_BELOW_LOUD
    mean = gated[speech].mean(axis=0) if speech.any() else gated.mean(axis=0)
    relative = np.clip(levels - loud, -GATE_BELOW_LOUD, 1.0)
    if loud <= SILENT_LEVEL:  # nothing audible at all: the floor everywhere
        relative = np.full_like(levels, -GATE_BELOW_LOUD)
    return np.concatenate([gated - mean, relative[:, None]], axis=1).astype(np.float32)


def silent_frames(mel: np.ndarray) -> np.ndarray:
    """(T,) bool per mel frame: inside a pause of at least MIN_SILENCE_S."""
    levels, loud = frame_levels(mel)
    quiet = (levels < loud - SILENT_BELOW_LOUD) | (levels <= SILENT_LEVEL)
    return long_runs(quiet, int(round(MIN_SILENCE_S * MEL_FPS)))


def long_runs(flags: np.ndarray, length: int) -> np.ndarray:
    """`flags` kept only where they are set `length` or more times in a row."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros(len(flags), bool)
    for start, end in zip(starts, ends):
        if end - start >= length:
            out[start:end] = True
    return out


def gate(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(N,) weight of the speech's motion at each time: 0 inside a pause of the dub (and outside the audio),
    1 in speech from ONSET_LEAD_S before it starts to GATE_LEAD_S after it stops, ramping over GATE_LEAD_S."""
    lag, lead = int(round(GATE_LEAD_S * MEL_FPS)), int(round(ONSET_LEAD_S * MEL_FPS))
    pad = max(lag, lead)
    speech = ~silent_frames(np.pad(mel, ((pad, pad), (0, 0)), constant_values=MEL_SILENCE))
    # Speech widened: a frame is speech if there is speech up to `lead` frames after it or `lag` frames before.
    widened = np.convolve(speech.astype(np.float32), np.ones(lag + lead + 1))[lead : lead + len(speech)] > 0
    ramp = np.convolve(widened.astype(np.float32), np.ones(lag) / lag, "same")
    position = np.asarray(times) * MEL_FPS + pad
    return np.interp(position, np.arange(len(ramp)), ramp, left=0.0, right=0.0)


def at_times(sequence: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """(B, C, T) values at mel frames -> (B, N, C) linearly interpolated at `times` (B, N) seconds
    (mel frame k is centred at k / MEL_FPS; times outside hold the end values)."""
    position = (times * MEL_FPS).clamp(0, sequence.shape[-1] - 1)
    lo = position.floor().long().clamp(max=sequence.shape[-1] - 1)
    hi = (lo + 1).clamp(max=sequence.shape[-1] - 1)
    frac = (position - lo).unsqueeze(1)
    lo_v = sequence.gather(2, lo.unsqueeze(1).expand(-1, sequence.shape[1], -1))
    hi_v = sequence.gather(2, hi.unsqueeze(1).expand(-1, sequence.shape[1], -1))
    return (lo_v + (hi_v - lo_v) * frac).transpose(1, 2)


class DilatedBlock(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.act = nn.LeakyReLU(0.2)
        self.drop = ShareDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(self.act(self.conv(self.act(x)))))


@dataclass(frozen=True)
class MotionConfig:
    components: int = 10
    width: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    dropout: float = 0.2

    def receptive_field_s(self) -> float:
        return (5 + 2 * sum(self.dilations)) / MEL_FPS


class MotionNet(nn.Module):
    """(B, 81, T) speech features at 80 frames/s -> (B, K, T) shape coefficients in units of the basis's scale."""

    def __init__(self, config: MotionConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Conv1d(N_MELS + 1, config.width, 5, padding=2)
        self.blocks = nn.Sequential(*(DilatedBlock(config.width, d, config.dropout) for d in config.dilations))
        self.head = nn.Conv1d(config.width, config.components, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(features)))


class MotionEnsemble(nn.Module):
    """MotionNets trained alike from different seeds, their predictions averaged. On a few minutes of speech one
    network also learns habits of the training speakers that another seed does not: their dev opening r differs
    by a few hundredths from seed to seed. The average keeps what they agree on (`lipsync train motion-ensemble`)."""

    def __init__(self, members: list[MotionNet]):
        super().__init__()
        self.config = members[0].config
        self.members = nn.ModuleList(members)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(features) for member in self.members]).mean(0)


@dataclass
class MotionModel:
    """The trained network with the basis it predicts in and its average style.

    gain: (K,) the spread of each true coefficient over the spread of the network's prediction, measured
    on the training clips: a regression predicts less motion than there is (it hedges), and this puts the
    average speaker's articulation back. An actor's own footage replaces it (motion.style).
    """

    net: MotionNet | MotionEnsemble
    basis: ShapeBasis
    gain: np.ndarray
    facts: dict

    @torch.inference_mode()
    def predict(self, mel: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(T, 80) log-mel, (N,) frame times in seconds -> (N, K) coefficients (basis units, average gain
        not applied). Times before or after the audio read silence."""
        self.net.eval()
        pad = int(np.ceil(self.net.config.receptive_field_s() * MEL_FPS))
        times = np.asarray(times, np.float64)
        # Silence around the audio (it does not count in the features' statistics), so frames before and
        # after it read silence rather than its edges.
        lead = max(0, int(np.ceil(-times.min(initial=0.0) * MEL_FPS))) + pad
        tail = max(0, int(np.ceil(times.max(initial=0.0) * MEL_FPS)) - len(mel)) + pad
        padded = np.pad(mel, ((lead, tail), (0, 0)), constant_values=MEL_SILENCE)
        x = torch.from_numpy(speech_features(padded).T.copy())[None]
        z = at_times(self.net(x), torch.from_numpy((times + lead / MEL_FPS).astype(np.float32))[None])[0]
        return z.numpy() * self.basis.scale


def save_motion_model(path: str | Path, model: MotionModel) -> None:
    """Write a motion model file atomically: the network's weights and the basis as tensors, the config
    and facts as metadata."""
    path = Path(path)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    for name in ("components", "scale", "open_direction", "wide_direction"):
        tensors[f"basis.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(model.basis, name), np.float32))
    tensors["gain"] = torch.from_numpy(np.ascontiguousarray(model.gain, np.float32))
    config = model.net.config
    metadata = {"format": MOTION_FORMAT, "config": json.dumps({**config.__dict__, "dilations": list(config.dilations)}),
                "facts": json.dumps(model.facts, sort_keys=True)}
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, path)


def load_motion_model(path: str | Path | None = None) -> MotionModel:
    """A motion model file (default: the bundled one), its weights checked finite."""
    path = Path(path) if path else DEFAULT_MOTION_MODEL
    metadata = file_metadata(path)
    if metadata.get("format") != MOTION_FORMAT:
        raise ModelError(f"{path}: not a motion model (format {metadata.get('format')!r}, expected {MOTION_FORMAT!r})")
    try:
        raw = json.loads(metadata["config"])
        config = MotionConfig(**{**raw, "dilations": tuple(raw["dilations"])})
        facts = json.loads(metadata.get("facts", "{}"))
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: its motion config cannot be read by this version ({error})") from None
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    # An ensemble's weights are named members.<i>.*; a gap in the numbers fails the strict load below.
    members = {k.split(".")[1] for k in state if k.startswith("members.")}
    net = MotionEnsemble([MotionNet(config) for _ in members]) if members else MotionNet(config)
    try:
        net.load_state_dict(state, strict=True)
        basis = ShapeBasis(*(tensors[f"basis.{n}"].numpy() for n in ("components", "scale", "open_direction", "wide_direction")))
        gain = tensors["gain"].numpy()
    except (KeyError, RuntimeError) as error:
        raise ModelError(f"{path}: motion model weights do not fit this version ({error})") from None
    check_finite(path, tensors, "motion model")
    return MotionModel(net.eval(), basis, gain, facts)
