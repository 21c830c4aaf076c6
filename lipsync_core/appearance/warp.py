"""Moving a real mouth onto a new shape: the face mesh's lower-face triangles, warped piecewise-affinely from a
source frame of the actor onto a target frame's geometry, at the plate's own resolution.

The triangles are MediaPipe's own tessellation of the face (every triangle whose corners are all lower-face
points), plus strips over the mouth opening, which the mesh leaves as a hole. The opening is not stretched as one
piece: its upper half travels with the upper lip and its lower half with the lower lip, each at the source's own
scale (`mouth_points`). Where the target opens less than the source, the middle of the source's opening is hidden
(teeth keep their size instead of being squeezed into a dotted line); where it opens more, the middle of the
source's opening is drawn out across the gap (the dark of the mouth, not stretched teeth).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..face.geometry import canonical_face
from ..face.landmarks import CHIN, COUNT, LIPS, NOSE_TIP, RIGHT_EYE_CORNERS, UPPER_LIP_TOP

# The inner lip contour from corner to corner, along the lower lip and along the upper lip: entry i of one faces
# entry i of the other across the opening.
INNER_LOWER = LIPS[20:31]
INNER_UPPER = (LIPS[20],) + LIPS[31:40][::-1] + (LIPS[30],)
PAIRS = len(INNER_LOWER) - 2  # facing points between the corners
# Extra points after the mesh's COUNT, one block of PAIRS each: how deep into the opening each lip shows the
# source's opening at its own scale (UPPER_DEPTH, LOWER_DEPTH), and the middle of the opening as reached from
# above and from below (same place in the target, each lip's own source line).
UPPER_DEPTH, UPPER_MIDDLE, LOWER_DEPTH, LOWER_MIDDLE = (COUNT + PAIRS * b for b in range(4))
POINTS = COUNT + 4 * PAIRS
# The lower face: mesh points below this fraction of the way from the eye corners down to the nose tip.
LOWER_FROM = 0.6
# Points of the lower face above this fraction of the way from the nose tip down to the upper lip stay with the
# skull when the mouth moves; the rest follow the lips and jaw.
STILL_ABOVE = 0.5


@lru_cache(maxsize=1)
def lower_face_points() -> np.ndarray:
    """Indices of the mesh points the warp moves (the lower face, nose base included as an anchor)."""
    face = canonical_face()
    eyes_y, nose_y = face[list(RIGHT_EYE_CORNERS), 1].mean(), face[NOSE_TIP, 1]
    return np.flatnonzero(face[:, 1] >= eyes_y + LOWER_FROM * (nose_y - eyes_y))


@lru_cache(maxsize=1)
def still_points() -> np.ndarray:
    """Indices of the lower-face points that the mouth's movement leaves in place (the nose and its base)."""
    face = canonical_face()
    lower = lower_face_points()
    limit = face[NOSE_TIP, 1] + STILL_ABOVE * (face[UPPER_LIP_TOP, 1] - face[NOSE_TIP, 1])
    return lower[face[lower, 1] < limit]


@lru_cache(maxsize=4)
def _anchor_triangles(moved: tuple[int, ...]) -> np.ndarray:
    """(A, 3) positions in `moved + still_points()`: a Delaunay triangulation of those points on the canonical
    face, the frame that carries every other lower-face point."""
    from scipy.spatial import Delaunay

    anchors = list(moved) + still_points().tolist()
    return Delaunay(canonical_face()[anchors, :2]).simplices.astype(np.int64)


def follow(points: np.ndarray, moved: list[int], moves: np.ndarray) -> np.ndarray:
    """(478, 2) points with points `moved` displaced by `moves`, and every other lower-face point (the lips' inner
    rows, the cheeks, the chin) carried by the triangle of moved and still points it lies in, at the same
    barycentric place: moving only the lips' contours would fold the mesh rows between them, and a smooth blend
    of the moves can still push a row across its neighbour where rows lie a pixel apart."""
    anchors = np.concatenate([np.asarray(moved), still_points()])
    anchor_moves = np.concatenate([moves, np.zeros((len(still_points()), 2))])
    frame = _anchor_triangles(tuple(moved))
    others = np.setdiff1d(lower_face_points(), anchors)
    corners = points[anchors][frame][:, :, :2].astype(np.float64)  # (A, 3, 2)
    edges = corners[:, 1:] - corners[:, :1]  # (A, 2, 2)
    determinant = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]
    determinant = np.where(np.abs(determinant) < 1e-9, 1e-9, determinant)
    offset = points[others, None, :2] - corners[None, :, 0]  # (O, A, 2)
    u = (offset[..., 0] * edges[:, 1, 1] - offset[..., 1] * edges[:, 1, 0]) / determinant
    v = (edges[:, 0, 0] * offset[..., 1] - edges[:, 0, 1] * offset[..., 0]) / determinant
    weights = np.stack([1 - u - v, u, v], axis=-1)  # (O, A, 3)
    # The triangle the point lies in; on a turned head, the one it lies least outside.
    best = np.argmax(weights.min(-1), axis=1)
    chosen = weights[np.arange(len(others)), best]  # (O, 3)
    result = points[:, :2].astype(np.float64).copy()
    result[moved] += moves
    result[others] += np.einsum("ok,okd->od", chosen, anchor_moves[frame[best]])
    return result


@lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(T, 3) point indices: the mesh's lower-face triangles and the strips over the mouth opening."""
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
    strips = []
    for lip, depth, middle in ((INNER_UPPER, UPPER_DEPTH, UPPER_MIDDLE), (INNER_LOWER, LOWER_DEPTH, LOWER_MIDDLE)):
        # Three rows from corner to corner (the lip, its depth line, the middle), meeting at the corners.
        rows = [list(lip)] + [[lip[0]] + [first + k for k in range(PAIRS)] + [lip[-1]] for first in (depth, middle)]
        for outer, inner in zip(rows, rows[1:]):
            for i in range(len(outer) - 1):
                strips += [(outer[i], outer[i + 1], inner[i + 1]), (outer[i], inner[i + 1], inner[i])]
    return np.array(sorted(found) + [t for t in strips if len(set(t)) == 3], np.int64)


def _down(points: np.ndarray) -> np.ndarray:
    """Unit vector across the mouth from the upper lip towards the chin: perpendicular to the corners' line."""
    along = points[INNER_LOWER[-1]] - points[INNER_LOWER[0]]
    down = np.array([-along[1], along[0]]) / max(float(np.linalg.norm(along)), 1e-6)
    return down if down @ (points[CHIN] - points[INNER_UPPER[PAIRS // 2 + 1]]) >= 0 else -down


def mouth_points(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(478, 2) source and target mesh points -> (POINTS, 2) each, with the mouth opening's extra points.

    Each lip shows the source's opening to the depth the target's opening has room for (half the target's gap,
    at the source's scale), no deeper than the source's middle; from there to the target's middle the source's
    line at that depth is drawn out."""
    source, target = source[:, :2].astype(np.float64), target[:, :2].astype(np.float64)
    ends = [INNER_LOWER[0], INNER_LOWER[-1]]
    scale = np.linalg.norm(np.diff(source[ends], axis=0)) / max(float(np.linalg.norm(np.diff(target[ends], axis=0))), 1e-6)
    down_s, down_t = _down(source), _down(target)
    upper, lower = list(INNER_UPPER[1:-1]), list(INNER_LOWER[1:-1])
    half_gap = np.maximum((target[lower] - target[upper]) @ down_t, 0) / 2  # target pixels
    source_gap = np.maximum((source[lower] - source[upper]) @ down_s, 0)  # source pixels
    depth = np.minimum(half_gap * scale, source_gap / 2)[:, None]  # source pixels
    middle = (target[upper] + target[lower]) / 2
    upper_s, lower_s = source[upper] + depth * down_s, source[lower] - depth * down_s
    upper_t, lower_t = target[upper] + depth / scale * down_t, target[lower] - depth / scale * down_t
    return (np.concatenate([source, upper_s, upper_s, lower_s, lower_s]),
            np.concatenate([target, upper_t, middle, lower_t, middle]))


def warp_triangles(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
                   size: tuple[int, int], feather: float) -> tuple[np.ndarray, np.ndarray]:
    """Warp `source` (h, w, C, any dtype) triangle by triangle so that `source_points` (POINTS, 2, in the source
    array's pixels) land on `target_points` (POINTS, 2, in the output's pixels; both from `mouth_points`). Returns the output (H, W, C)
    float32 and its coverage (H, W) float32: 1 inside the warped triangles, falling to 0 over `feather` pixels
    inside their outline (0 where nothing landed).

    One dense map: every output pixel is labelled with the triangle it lies in, mapped back into the source by
    that triangle's affine transform, and sampled in one bilinear remap."""
    height, width = size
    tris = triangles()
    label = np.zeros((height, width), np.uint16)  # triangle index + 1; 0: outside the mesh
    dst = target_points[tris].astype(np.float64)  # (T, 3, 2)
    rows = np.concatenate([dst, np.ones((len(tris), 3, 1))], axis=2)  # (T, 3, 3): a corner per row
    # The inverse of each 3x3 by its adjugate: numpy's batched solve pays LAPACK's overhead per triangle.
    adjugate = np.stack([np.cross(rows[:, 1], rows[:, 2]), np.cross(rows[:, 2], rows[:, 0]),
                         np.cross(rows[:, 0], rows[:, 1])], axis=2)
    area = np.einsum("ti,ti->t", rows[:, 0], adjugate[:, :, 0])
    drawn = np.abs(area) > 1e-3  # a collapsed triangle covers nothing
    # The affine transform of each triangle from the output back into the source: rows @ A.T = source corners.
    inverse = np.zeros((len(tris) + 1, 2, 3), np.float32)
    into_source = adjugate[drawn] / area[drawn, None, None] @ source_points[tris][drawn].astype(np.float64)
    inverse[1:][drawn] = into_source.transpose(0, 2, 1)
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
    # A pixel on the outline of a sliver triangle (a lip corner, a closed mouth) lies outside it, where its affine
    # transform extrapolates far across the source: keep every sample within a pixel of its triangle's source.
    corners_s = source_points[tris].astype(np.float32)
    low = np.concatenate([np.zeros((1, 2), np.float32), corners_s.min(1) - 1])
    high = np.concatenate([np.zeros((1, 2), np.float32), corners_s.max(1) + 1])
    map_x = np.clip(map_x, low[label, 0], high[label, 0])
    map_y = np.clip(map_y, low[label, 1], high[label, 1])
    inside = label > 0
    map_x[~inside], map_y[~inside] = -1, -1
    # Bicubic: bilinear sampling at the warp's fractional offsets blurs away a quarter of the lips' fine detail.
    # Its overshoot is clipped to the source's range (no negative light in a float plate).
    pixels = source.astype(np.float32)
    out = cv2.remap(pixels, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    out = np.clip(out, pixels.min(), pixels.max())
    if out.ndim == 2:
        out = out[..., None]
    coverage = inside.astype(np.float32)
    if feather > 0:
        # Fade out inside the outline, so the warped face never ends in a hard edge under a soft mask.
        distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
        coverage = np.clip(distance / feather, 0.0, 1.0)
    return out, coverage
