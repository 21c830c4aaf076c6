"""StyleLipSync: masked frames + one reference + per-frame audio -> generated frames."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .decoder import StyleDecoder
from .encoders import AudioEncoder, FaceEncoder, ReferenceEncoder
from .mals import MaLS


class StyleLipSync(nn.Module):
    """w_t = w_avg + w_ref + MaLS(a)_t, decoded by G with SaMF fusing E_face's features.

    Temporal coupling lives only in the codes (MaLS), so a long shot is rendered by computing the
    codes for the whole range once (cheap) and decoding frames in any batches: the result is the same
    as one full pass (see `codes` and `decode`).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.face_encoder = FaceEncoder(config)
        self.ref_encoder = ReferenceEncoder(config)
        self.audio_encoder = AudioEncoder(config)
        self.mals = MaLS(config.w_dim, config.mals_weights)
        self.w_avg = nn.Parameter(torch.zeros(config.n_codes, config.w_dim))
        self.decoder = StyleDecoder(config)

    def audio_codes(self, mels: torch.Tensor) -> torch.Tensor:
        """mels: (B, T, mel_window, n_mels) -> the per-frame audio codes a_t (B, T, 2L, C)."""
        b, t = mels.shape[:2]
        return self.audio_encoder(mels.flatten(0, 1)).view(b, t, self.config.n_codes, self.config.w_dim)

    def codes(self, ref: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """ref: (B, 3, S, S); mels: (B, T, mel_window, n_mels) -> W+ codes (B, T, 2L, C)."""
        return self.style_codes(ref, self.audio_codes(mels))

    def style_codes(self, ref: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """W+ codes from the reference and audio codes already computed (`audio_codes`)."""
        return self.w_avg + self.ref_encoder(ref)[:, None] + self.mals(audio)

    def decode(self, masked: torch.Tensor, mask: torch.Tensor, ref: torch.Tensor, codes: torch.Tensor,
               footage: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame decoding. masked: (N, 3, S, S), mask: (N, 1, S, S), ref: (N, 3, S, S), codes: (N, 2L, C);
        for the footage path's renderer, footage: (N, 4, S, S) the warped frame of the actor (`footage_input`).
        Returns (N, 3, S, S), or for the renderer (N, 4, S, S): its drawing and the confidence's logit (`fuse`)."""
        inputs = [masked, mask, ref] + ([footage] if self.config.footage else [])
        return self.decoder(codes, self.face_encoder(torch.cat(inputs, dim=1)))

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, ref: torch.Tensor, mels: torch.Tensor,
                footage: torch.Tensor | None = None) -> torch.Tensor:
        """A clip window. masked: (B, T, 3, S, S) in [-1, 1] with the mask region zeroed; mask: (B, T, 1, S, S);
        ref: (B, 3, S, S); mels: (B, T, mel_window, n_mels); footage (renderer): (B, T, 4, S, S) -> (B, T, 3 or 4, S, S)."""
        return self.render(masked, mask, ref, self.audio_codes(mels), footage)

    def render(self, masked: torch.Tensor, mask: torch.Tensor, ref: torch.Tensor, audio: torch.Tensor,
               footage: torch.Tensor | None = None) -> torch.Tensor:
        """As `forward`, from audio codes already computed (`audio_codes`)."""
        b, t = masked.shape[:2]
        codes = self.style_codes(ref, audio)
        refs = ref[:, None].expand(-1, t, -1, -1, -1)
        out = self.decode(masked.flatten(0, 1), mask.flatten(0, 1), refs.flatten(0, 1), codes.flatten(0, 1),
                          footage.flatten(0, 1) if footage is not None else None)
        return out.view(b, t, *out.shape[1:])


def masked_input(frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The generator's view of a frame: the mask region blanked (soft edge from the feathered mask)."""
    return frames * (1 - masks)


def footage_input(warped: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The renderer's view of the warped frame of the actor: (..., 3, S, S) in [-1, 1] and where it holds pixels
    (..., 1, S, S) in [0, 1] -> (..., 4, S, S), blank where it holds none."""
    return torch.cat([warped * valid, valid], dim=-3)


def fuse(drawn: torch.Tensor, footage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The renderer's picture: its confidence alpha of the warped frame's pixels (never where the frame holds none),
    the rest painted by G. drawn: (..., 4, S, S) from `decode`; footage: (..., 4, S, S) from `footage_input`.
    Returns the picture (..., 3, S, S) and alpha (..., 1, S, S). At a plate's resolution the same alpha mixes the
    warped frame at full size with G's picture scaled up, so where alpha is 1 the real texture is kept whole."""
    trust = torch.sigmoid(drawn[..., 3:, :, :])
    alpha = trust * footage[..., 3:, :, :]
    # footage's RGB is already weighted by where it holds pixels: trust * it = alpha * the warped frame.
    return trust * footage[..., :3, :, :] + (1 - alpha) * drawn[..., :3, :, :], alpha
