"""The artist's motion controls and their limits: plain data with no dependencies, so a host can read the
parameter schema (`lipsync_core.ops`) in its own Python without numpy or the model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MotionControls:
    """The motion controls as they stand on one frame."""

    gain: float = 1.0  # articulation: the mouth's movement away from rest, scaled (0 holds it at rest)
    open: float = 0.0  # > 0: added opening, in the actor's opening range (their wide opening over rest); < 0: that
    # share of the opening taken away (-1 closes the lips)
    wide: float = 0.0  # added width, in the actor's width range (their widest over narrowest)


MOTION_LIMITS = {
    "gain": (0.0, 3.0),
    "open": (-1.0, 2.0),
    "wide": (-1.0, 1.0),
}
