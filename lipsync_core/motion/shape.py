"""The mouth shape: the face mesh's lip and jaw points in the aligned crop, and the compact basis the
motion model speaks in.

Units: pixels of a 256-px aligned crop (`CROP_UNITS`), whatever crop size the points were measured in,
so shapes from the training cache (128 px) and from a plate's track compare directly. The crop is fixed
to the skull (geometry.alignment_matrix poses it on rigid points), so head motion does not move these
points; speech does.

A shape is stored as offsets from the actor's rest shape (their closed, resting mouth): silence is an
offset of zero, and the same offsets look right on a wide or a narrow mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face.landmarks import INNER_LIP_BOTTOM, INNER_LIP_TOP, JAW, LIPS, MOUTH_CORNERS

SHAPE_POINTS = LIPS + JAW
CROP_UNITS = 256
# Where the named points sit in SHAPE_POINTS.
LIP_INDEX = [SHAPE_POINTS.index(p) for p in LIPS]
_TOP, _BOTTOM = SHAPE_POINTS.index(INNER_LIP_TOP), SHAPE_POINTS.index(INNER_LIP_BOTTOM)
_LEFT, _RIGHT = SHAPE_POINTS.index(MOUTH_CORNERS[0]), SHAPE_POINTS.index(MOUTH_CORNERS[1])
# The fraction of a shot's frames, least open first, whose median is the rest shape.
REST_QUANTILE = 0.1


def crop_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(..., 478, 2+) landmarks in a `size`-px aligned crop -> (..., P, 2) shape points in CROP_UNITS."""
    points = np.asarray(landmarks, dtype=np.float64)[..., list(SHAPE_POINTS), :2]
    # Pixel centres: pixel i of a crop covers [i - 0.5, i + 0.5].
    return ((points + 0.5) * (CROP_UNITS / size) - 0.5).astype(np.float32)


def opening(points: np.ndarray) -> np.ndarray:
    """(..., P, 2) -> the inner-lip gap in crop units, signed: negative when the lips press past each other."""
    return points[..., _BOTTOM, 1] - points[..., _TOP, 1]


def width(points: np.ndarray) -> np.ndarray:
    """(..., P, 2) -> corner-to-corner width in crop units."""
    return np.linalg.norm(points[..., _RIGHT, :] - points[..., _LEFT, :], axis=-1)


def rest_shape(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, P, 2) shapes of one actor -> (P, 2) their resting mouth: the median of the least open tenth
    of the frames (a talking shot closes the mouth often; its median frame is half open)."""
    shapes = points[valid]
    if not len(shapes):
        raise ValueError("no frame with a face to take the rest shape from")
    gaps = opening(shapes)
    closed = shapes[gaps <= np.quantile(gaps, REST_QUANTILE)]
    return np.median(closed, axis=0).astype(np.float32)


def _opening_of(flat_offset: np.ndarray) -> float:
    """The change of opening an offset (2P,) makes."""
    return float(opening(flat_offset.reshape(-1, 2)))


@dataclass
class ShapeBasis:
    """Principal components of mouth offsets from rest: offset ~ coefficients @ components.

    components: (K, 2P) orthonormal rows; scale: (K,) the spread (std) of each coefficient on the data
    it was fitted on, so `coefficients / scale` are about unit-sized targets. open_direction and
    wide_direction: (2P,) the offset that opens the inner lips by one crop unit (widens the corners by
    one), fitted on the same data: the artist's corrections move the shape along them.
    """

    components: np.ndarray
    scale: np.ndarray
    open_direction: np.ndarray
    wide_direction: np.ndarray

    @classmethod
    def fit(cls, offsets: np.ndarray, rest: np.ndarray, count: int) -> ShapeBasis:
        """offsets: (N, P, 2) from rest; rest: (N, P, 2) the rest each offset is from."""
        flat = offsets.reshape(len(offsets), -1).astype(np.float64)
        _, sigma, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
        components = vt[:count]
        scale = sigma[:count] / np.sqrt(len(flat))
        shapes = offsets + rest
        gap, span = opening(shapes) - opening(rest), width(shapes) - width(rest)
        # Least squares over the data: the offset per unit of opening, then per unit of width with the
        # opening held (so "wider" does not also open the mouth).
        design = np.stack([gap, span, np.ones_like(gap)], axis=1)
        directions, *_ = np.linalg.lstsq(design, flat, rcond=None)
        # Exactly one unit of opening per unit of open_direction, and none along wide_direction (the opening
        # is linear in the offsets), so "closed" lands on the rest opening exactly.
        open_direction = directions[0] / _opening_of(directions[0])
        wide_direction = directions[1] - _opening_of(directions[1]) * open_direction
        return cls(components.astype(np.float32), scale.astype(np.float32),
                   open_direction.astype(np.float32), wide_direction.astype(np.float32))

    def encode(self, offsets: np.ndarray) -> np.ndarray:
        """(..., P, 2) offsets -> (..., K) coefficients."""
        flat = np.asarray(offsets, np.float32).reshape(*offsets.shape[:-2], -1)
        return flat @ self.components.T

    def decode(self, coefficients: np.ndarray) -> np.ndarray:
        """(..., K) coefficients -> (..., P, 2) offsets."""
        flat = np.asarray(coefficients, np.float32) @ self.components
        return flat.reshape(*flat.shape[:-1], -1, 2)
