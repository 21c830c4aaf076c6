"""A shot: what one dub of one plate needs, saved as a small JSON sidecar next to the plate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MaskOverrides:
    """The compositor's mask controls as they stand on one frame."""

    grow: float = 0.0  # plate pixels; negative shrinks
    feather: float | None = None  # plate pixels of soft edge; None: about 6% of the face height
    offset_y: float = 0.0  # plate pixels, positive moves the mask down
    jaw_extension: float = 0.25  # how far the chin outline drops, in nose-to-chin distances
    mouth_margin: float = 0.05  # sideways widening below the nose base, in face widths
