"""The compositor's mask controls and their limits: plain data with no dependencies, so a host can read
the parameter schema (`lipsync_core.ops`) in its own Python without numpy, OpenCV or the model."""

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


# Allowed range of each control: wide enough for any real use, narrow enough to catch a typo.
MASK_LIMITS = {
    "grow": (-500.0, 500.0),
    "feather": (0.0, 500.0),
    "offset_y": (-500.0, 500.0),
    "jaw_extension": (0.0, 1.5),
    "mouth_margin": (-0.2, 0.5),
}
