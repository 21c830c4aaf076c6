"""Model configs as data. One architecture; the configs differ only in numbers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str
    size: int  # aligned crop side in pixels (power of two, >= 8)
    w_dim: int  # width C of each W+ code
    channels: dict[int, int]  # decoder/encoder channels per resolution
    n_mels: int = 80
    mel_window: int = 16  # mel frames per video frame: 0.2 s at 80 mel frames/s
    syncnet_frames: int = 5  # consecutive frames SyncNet sees
    syncnet_size: int = 64  # SyncNet sees the lower half of the crop resized to this width
    embed_dim: int = 256  # SyncNet embedding width
    audio_width: int = 128  # hidden width of the audio towers
    mals_weights: tuple[float, float, float] = (0.25, 0.5, 0.25)
    # The footage path's renderer: E_face also sees a frame of the actor warped onto the target mouth (appearance/),
    # and G also draws a confidence: how much of each pixel that frame gives and how much G paints (`fuse`).
    footage: bool = False

    @property
    def resolutions(self) -> list[int]:
        """Decoder block resolutions, 4 .. size."""
        res, out = 4, []
        while res <= self.size:
            out.append(res)
            res *= 2
        return out

    @property
    def n_codes(self) -> int:
        """2L: two style vectors per decoder block."""
        return 2 * len(self.resolutions)

    def to_json(self) -> str:
        data = asdict(self)
        data["channels"] = {str(k): v for k, v in self.channels.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        data = json.loads(text)
        data["channels"] = {int(k): v for k, v in data["channels"].items()}
        data["mals_weights"] = tuple(data["mals_weights"])
        return cls(**data)


CONFIGS: dict[str, ModelConfig] = {
    # Trainable on a 2-core CPU in hours and close to real time there.
    "cpu": ModelConfig(
        name="cpu",
        size=128,
        w_dim=128,
        channels={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16},
    ),
    # The renderer of the footage path: the cpu numbers, over one warped candidate of the actor's own frames.
    "cpu_footage": ModelConfig(
        name="cpu_footage",
        size=128,
        w_dim=128,
        channels={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16},
        footage=True,
    ),
    # The paper's numbers: 256 px, 512-d codes, StyleGAN2 config-f channels.
    "paper": ModelConfig(
        name="paper",
        size=256,
        w_dim=512,
        channels={4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128},
        embed_dim=512,
        audio_width=256,
    ),
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown model config {name!r}; known: {', '.join(CONFIGS)}") from None
