"""An invisible watermark inside the dubbed region: DWT-DCT quantisation, no model weights.

Why our own rather than `invisible-watermark`'s dwtDct: that one converts the whole frame to YUV and back (which
moves pixels outside the mask), refuses images under 256x256, and decodes by averaging every block of the frame,
so a mark confined to a mouth is drowned by the unmarked rest. The method is the same (a Haar DWT, 4x4 DCT blocks
of its LL band, coefficients quantised to one of two lattices per bit); what differs:
- the mark is weighted by the blend mask, so pixels outside the mask are never touched;
- each block carries its bit in five low-frequency coefficients and votes with the eighth power of their agreement:
  in a marked block all five say the same bit, in an unmarked one they disagree, so the decoder hears the mouth
  and not the rest of the frame without knowing where the face was (measured: three coefficients and a plain vote
  lost the mark of a 100 px mouth in a 720p frame after H.264, 14 of 32 bits right);
- each vote is weighed again by how much the blocks around it agree: a mouth is a patch of marked blocks, a block of
  the rest that agrees by chance stands alone (measured on a 16-frame GRID dub encoded twice by H.264: without it the
  weakest magic bit's vote was within the unmarked frames' noise and the tag was lost; with it, 7 times that noise);
- a bit's place repeats in an 8x8-block tile anchored at the frame's corner, so any part of the frame carries the
  whole payload, and votes add up over frames;
- the decoder also reads the frame as if at twice its size (its own pixels are that frame's LL band), which brings a
  50% downscale back onto the grid;
- a small mouth is marked more lightly: the grain is 8x8 pixels whatever the face's size, so on a small face it is
  coarse against the lips and shows when zoomed in. The coefficients move only part of the way to their lattice point
  (strength, by the mouth box's height), so the decoder's lattice, and its step, stay the same for every face.
Payload: 32 bits, "LS" then the first two bytes of the model's SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pywt

from ..media.colour import from_display, to_display
from ..media.ocio import PlateSpace

MAGIC = b"LS"
BITS = 32
BLOCK = 4  # DCT block on the LL band: 8x8 pixels of the frame
TILE = 8  # blocks per side of the repeating tile: 64 places, every bit twice
TILE_PIXELS = 2 * BLOCK * TILE  # the tile's side in the frame: a picture placed at a multiple of it keeps its mark
COEFFS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))  # low frequencies: they survive H.264 and a 2x resize
STEP = 48.0  # quantisation step in LL units of 8-bit luma; measured cost and strength in the README
FULL_STRENGTH_BOX = 160  # mouth boxes this tall (pixels) or taller move their coefficients all the way
# The smallest mouths still move them 85% of the way. Measured on 25 frames of a 102 px mouth in 720p: at 0.8 a bit of
# the model's hash came out wrong after H.264, at 0.7 the mark was lost; the cost falls by 1.4 dB (README).
MIN_STRENGTH = 0.85
AGREEMENT_POWER = 8
NEIGHBOURHOOD = 5  # blocks per side whose agreement weighs a block's vote: 40 px, smaller than the smallest mouth
SCALES = (1, 2)  # the decoder's tries: as is, and a 50% downscale undone

_n = np.arange(BLOCK)
_DCT = np.sqrt(2 / BLOCK) * np.cos(np.pi * (2 * _n[None, :] + 1) * _n[:, None] / (2 * BLOCK))
_DCT[0] /= np.sqrt(2)  # orthonormal DCT-II: the coefficient's energy is the pixels' energy
_ROWS, _COLS = np.array(COEFFS).T


def payload(model_sha256: str) -> np.ndarray:
    """The 32 bits a dub made with this model carries."""
    return np.unpackbits(np.frombuffer(MAGIC + bytes.fromhex(model_sha256[:4]), np.uint8))


def _luma(rgb255: np.ndarray) -> np.ndarray:
    return rgb255[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)


def _blocks(luma: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The DCT of the LL band's whole 4x4 blocks, (rows, cols, 4, 4), and what it takes to put them back."""
    h, w = (luma.shape[0] // (2 * BLOCK)) * 2 * BLOCK, (luma.shape[1] // (2 * BLOCK)) * 2 * BLOCK
    ll, details = pywt.dwt2(luma[:h, :w].astype(np.float64), "haar")
    return _dct(ll), (h, w, details)


def _dct(ll: np.ndarray) -> np.ndarray:
    rows, cols = ll.shape[0] // BLOCK, ll.shape[1] // BLOCK
    blocks = ll[:rows * BLOCK, :cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    return _DCT @ blocks @ _DCT.T


def _places(rows: int, cols: int) -> np.ndarray:
    """The payload bit each block carries: fixed by its place in the tile."""
    r, c = np.meshgrid(np.arange(rows) % TILE, np.arange(cols) % TILE, indexing="ij")
    return (r * TILE + c) % BITS


def embed(image: np.ndarray, mask: np.ndarray, bits: np.ndarray, space: PlateSpace | None = None) -> np.ndarray:
    """`image` (any plate dtype; a float one in `space`, see media.ocio) with `bits` marked in its display image where
    `mask` > 0; every pixel where `mask` is 0 is returned as is.
    Only the mask's box is worked on, from a corner on whole tiles: its blocks carry the bits they carry in the
    whole frame (the Haar and DCT blocks are local), and a 4K frame costs what its mouth does. The mark's strength
    follows the box's height (`strength`)."""
    ys, xs = np.nonzero(mask > 0)
    if not len(ys):
        return image
    block = 2 * BLOCK
    y0, x0 = int(ys.min()) // TILE_PIXELS * TILE_PIXELS, int(xs.min()) // TILE_PIXELS * TILE_PIXELS
    y1 = min(-(-(int(ys.max()) + 1) // block) * block, image.shape[0])
    x1 = min(-(-(int(xs.max()) + 1) // block) * block, image.shape[1])
    result = image.copy()
    result[y0:y1, x0:x1] = _embed(image[y0:y1, x0:x1], mask[y0:y1, x0:x1], bits, strength(int(ys.max() - ys.min()) + 1),
                                  space)
    return result


def strength(box_height: int) -> float:
    """How far the coefficients of a mouth box this tall move towards their lattice point (1: all the way). The
    cost in the box goes with its square."""
    return min(1.0, max(MIN_STRENGTH, box_height / FULL_STRENGTH_BOX))


def _embed(image: np.ndarray, mask: np.ndarray, bits: np.ndarray, amount: float, space: PlateSpace | None) -> np.ndarray:
    display = to_display(image, space) * 255.0
    luma = _luma(display)
    coeffs, (h, w, details) = _blocks(luma)
    want = bits[_places(*coeffs.shape[:2])][..., None] * 0.5 + 0.25
    c = coeffs[..., _ROWS, _COLS] / STEP
    coeffs[..., _ROWS, _COLS] = (np.round(c - want) + want) * STEP  # the nearest point of the bit's lattice
    blocks = _DCT.T @ coeffs @ _DCT
    ll = blocks.transpose(0, 2, 1, 3).reshape(h // 2, w // 2)
    delta = np.zeros_like(luma)
    delta[:h, :w] = pywt.idwt2((ll, details), "haar") - luma[:h, :w]
    # The same change on R, G and B changes luma by that much whatever its weights, and leaves the hue.
    marked = from_display((display + (delta * mask * amount)[..., None]) / 255.0, image, space)
    return np.where((mask > 0)[..., None], marked, image)


@dataclass
class Reading:
    bits: np.ndarray  # the 32 bits voted
    votes: np.ndarray  # their summed votes: the sign is the bit, the size how sure
    scale: int  # 2: the frames were read at twice their size (a 50% downscale undone)

    @property
    def found(self) -> bool:
        """The tag is there: by chance 1 in 65536 per scale tried."""
        return np.packbits(self.bits[:16]).tobytes() == MAGIC

    @property
    def model_prefix(self) -> str:
        return np.packbits(self.bits[16:]).tobytes().hex()


class Decoder:
    """Votes over frames: feed every frame (`add`), then `reading()`."""

    def __init__(self):
        self._votes = {scale: np.zeros(BITS) for scale in SCALES}
        self._blocks = dict.fromkeys(SCALES, 0)

    def add(self, image: np.ndarray) -> None:
        luma = _luma(to_display(image) * 255.0)
        for scale in SCALES:
            # The LL band of the frame at twice its size is the frame itself, times two (the Haar LL of a 2x2
            # block is twice its mean): no need to make the big frame.
            coeffs = _blocks(luma)[0] if scale == 1 else _dct(2.0 * luma)
            # A coefficient on bit 0's lattice (a quarter step) has sine +1, on bit 1's (three quarters) -1.
            said = np.sin(2 * np.pi * coeffs[..., _ROWS, _COLS] / STEP).mean(axis=-1)
            agreement = np.abs(said) ** AGREEMENT_POWER
            # A marked mouth is a patch of blocks that all agree; a block of the rest that agrees by chance stands
            # alone. Weighing each vote by its neighbours' agreement hears the patch over the rest of the frame.
            neighbours = cv2.blur(agreement, (NEIGHBOURHOOD, NEIGHBOURHOOD), borderType=cv2.BORDER_REFLECT)
            vote = np.sign(said) * agreement * neighbours
            self._votes[scale] += np.bincount(_places(*said.shape).ravel(), vote.ravel(), minlength=BITS)
            self._blocks[scale] += said.size

    def reading(self) -> Reading:
        # The scale whose votes stand out most from what as many unmarked blocks would sum to.
        scale = max(SCALES, key=lambda s: np.abs(self._votes[s]).sum() / np.sqrt(max(self._blocks[s], 1)))
        votes = self._votes[scale]
        return Reading((votes < 0).astype(np.uint8), votes, scale)
