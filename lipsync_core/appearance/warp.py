"""Moving a real mouth onto a new shape: the face mesh's lower-face triangles, warped piecewise-affinely from a
source frame of the actor onto a target frame's geometry, at the plate's own resolution.

The triangles are MediaPipe's own tessellation of the face (every triangle whose corners are all lower-face
points), plus a fan over the mouth opening from a point at its centre (`MOUTH_CENTRE`): the mesh leaves the
opening as a hole, and the teeth and tongue behind it must travel with the lips.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..face.geometry import canonical_face
from ..face.landmarks import COUNT, LIPS, NOSE_TIP, RIGHT_EYE_CORNERS

INNER_LIPS = LIPS[20:]  # the inner contour, in order around the opening
MOUTH_CENTRE = COUNT  # the extra point: mean of the inner lip contour
# The lower face: mesh points below this fraction of the way from the eye corners down to the nose tip.
LOWER_FROM = 0.6


@lru_cache(maxsize=1)
def lower_face_points() -> np.ndarray:
    """Indices of the mesh points the warp moves (the lower face, nose base included as an anchor)."""
    face = canonical_face()
    eyes_y, nose_y = face[list(RIGHT_EYE_CORNERS), 1].mean(), face[NOSE_TIP, 1]
    return np.flatnonzero(face[:, 1] >= eyes_y + LOWER_FROM * (nose_y - eyes_y))


@lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(T, 3) point indices: the mesh's lower-face triangles and the fan over the mouth opening."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    lower = set(lower_face_points().tolist())
    found = set()
    for a, b in FACEMESH_TESSELATION:
        for c in neighbours[a] & neighbours[b]:
            if {a, b, c} <= lower:
                found.add(tuple(sorted((a, b, c))))
    fan = [(INNER_LIPS[i], INNER_LIPS[(i + 1) % len(INNER_LIPS)], MOUTH_CENTRE) for i in range(len(INNER_LIPS))]
    return np.array(sorted(found) + fan, np.int64)


def with_centre(points: np.ndarray) -> np.ndarray:
    """(478, 2) points -> (479, 2) with the mouth opening's centre appended."""
    return np.concatenate([points[:, :2], points[list(INNER_LIPS), :2].mean(0, keepdims=True)])


def warp_triangles(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
                   size: tuple[int, int], feather: float) -> tuple[np.ndarray, np.ndarray]:
    """Warp `source` (h, w, C, any dtype) triangle by triangle so that `source_points` (479, 2, in the source
    array's pixels) land on `target_points` (479, 2, in the output's pixels). Returns the output (H, W, C)
    float32 and its coverage (H, W) float32: 1 inside the warped triangles, falling to 0 over `feather` pixels
    inside their outline (0 where nothing landed).

    One dense map: every output pixel is labelled with the triangle it lies in, mapped back into the source by
    that triangle's affine transform, and sampled in one bilinear remap."""
    height, width = size
    tris = triangles()
    label = np.zeros((height, width), np.uint16)  # triangle index + 1; 0: outside the mesh
    dst = target_points[tris].astype(np.float64)  # (T, 3, 2)
    corners = np.concatenate([dst, np.ones((len(tris), 3, 1))], axis=2)
    area = np.linalg.det(corners)
    drawn = np.abs(area) > 1e-3  # a collapsed triangle covers nothing
    # The affine transform of each triangle from the output back into the source: corners @ A.T = source corners.
    inverse = np.zeros((len(tris) + 1, 2, 3), np.float32)
    inverse[1:][drawn] = np.linalg.solve(corners[drawn], source_points[tris][drawn].astype(np.float64)).transpose(0, 2, 1)
    for n in np.flatnonzero(drawn) + 1:
        outline = np.round(dst[n - 1] * 16).astype(np.int32)
        cv2.fillConvexPoly(label, outline, int(n), cv2.LINE_8, shift=4)
        # Its outline too: pixels on an edge two triangles share must belong to one of them, not to neither.
        cv2.polylines(label, [outline], True, int(n), 1, cv2.LINE_8, shift=4)
    # Pinholes (a folded or collapsed triangle, a pixel no outline reached) take a neighbour's triangle: left
    # empty, the plate's own mouth would show through them as specks.
    kernel = np.ones((3, 3), np.uint8)
    holes = (label == 0) & (cv2.morphologyEx((label > 0).astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0)
    if holes.any():
        label[holes] = cv2.dilate(label, kernel)[holes]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a = inverse[label]
    map_x = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    map_y = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    inside = label > 0
    map_x[~inside], map_y[~inside] = -1, -1
    out = cv2.remap(source.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2:
        out = out[..., None]
    coverage = inside.astype(np.float32)
    if feather > 0:
        # Fade out inside the outline, so the warped face never ends in a hard edge under a soft mask.
        distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
        coverage = np.clip(distance / feather, 0.0, 1.0)
    return out, coverage
