"""The pose-aware lower-face mask: the region the generator redraws and the compositor blends.

The mask is the lower face (everything below the nose base: cheeks, lips, chin, jaw line) of the
person's face shape over the shot (or the canonical face), widened for a jaw that drops further than
in the source, posed with the head pose fitted on the rigid landmarks, projected, filled and
feathered. It never looks at the frame's own lips or jaw: a mask that followed the mouth opening
would hand the generator the mouth shape through its silhouette, and a model trained that way reads
the mask instead of the audio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..shot import MaskOverrides, Shot
from .geometry import canonical_face, head_pose, scale_of, transform_points
from .landmarks import CHIN, FACE_OVAL, MOUTH_CORNERS, NOSE_TIP, UPPER_LIP_TOP, face_size

if TYPE_CHECKING:  # track.py imports this module
    from .track import Track

# The soft edge when no feather is set, as a fraction of the face height (resolution independent).
DEFAULT_FEATHER = 0.06
# Where the top edge lies from the top of the upper lip (0) to the nose tip (1).
NOSE_BASE = 0.6


def _lower_face(face: np.ndarray, jaw_extension: float, mouth_margin: float) -> np.ndarray:
    """The mask's 3D points on a face in the canonical frame (their convex hull, projected, is the mask)."""
    face = face.astype(np.float64)
    # The top edge runs at the nose base, between the top of the upper lip and the nose tip (a little
    # nearer the tip: the upper lip rises as the mouth opens).
    top = face[UPPER_LIP_TOP, 1] + NOSE_BASE * (face[NOSE_TIP, 1] - face[UPPER_LIP_TOP, 1])
    below = face[face[:, 1] >= top]
    # The jaw swings down from about the mouth corners: the chin drops most, the cheeks not at all.
    mouth_level = face[list(MOUTH_CORNERS), 1].mean()
    chin_drop = jaw_extension * (face[CHIN, 1] - face[NOSE_TIP, 1])
    oval = face[list(FACE_OVAL)]
    oval = oval[oval[:, 1] >= top]
    weight = np.clip((oval[:, 1] - mouth_level) / (face[CHIN, 1] - mouth_level), 0.0, 1.0)
    dropped = oval + np.outer(weight, [0.0, chin_drop, 0.0])
    points = np.concatenate([below, dropped])
    # Sideways room for a wider mouth and stretching cheeks, about the face's midline.
    points[:, 0] *= 1.0 + mouth_margin
    return points


def default_feather(landmarks3d: np.ndarray, face: np.ndarray | None = None) -> float:
    """The soft edge, in plate pixels, when the shot sets none: DEFAULT_FEATHER of the face height,
    taken from the head's scale and not the observed chin, so it does not change as the mouth opens."""
    face = canonical_face() if face is None else face
    return DEFAULT_FEATHER * head_pose(landmarks3d, face)[2] * float(face_size(face))


def mask_polygon(
    landmarks3d: np.ndarray,
    M: np.ndarray | None = None,
    overrides: MaskOverrides | None = None,
    face: np.ndarray | None = None,
) -> np.ndarray:
    """The mask outline (K, 2) before grow and feather: in plate pixels, or in crop pixels with M.
    face: the person's own face (`geometry.face_shape`, `FaceTrack.shape`); default the canonical face."""
    overrides = overrides or MaskOverrides()
    face = canonical_face() if face is None else face
    R, t, s = head_pose(landmarks3d, face)
    points = (s * _lower_face(face, overrides.jaw_extension, overrides.mouth_margin) @ R.T + t)[:, :2]
    points[:, 1] += overrides.offset_y
    if M is not None:
        points = transform_points(points, M)
    hull = cv2.convexHull(points.astype(np.float32))[:, 0]
    return hull.astype(np.float64)


def lower_face_mask(
    landmarks3d: np.ndarray,
    shape_hw: tuple[int, int],
    M: np.ndarray | None = None,
    overrides: MaskOverrides | None = None,
    face: np.ndarray | None = None,
) -> np.ndarray:
    """The feathered lower-face mask, float32 (H, W) in [0, 1].

    In plate space (M=None, shape_hw = the plate's), or in the aligned crop (M from alignment_matrix,
    shape_hw = (size, size)). Pixel amounts in `overrides` (grow, feather, offset_y) are plate pixels
    and are scaled into the crop. The feather is centred on the outline: 0.5 lies on it.
    face: the person's own face (`FaceTrack.shape`); default the canonical face.
    """
    overrides = overrides or MaskOverrides()
    face = canonical_face() if face is None else face
    height, width = shape_hw
    pixel = 1.0 if M is None else scale_of(M)
    polygon = mask_polygon(landmarks3d, M, overrides, face)
    feather = default_feather(landmarks3d, face) if overrides.feather is None else overrides.feather
    feather *= pixel
    grow = overrides.grow * pixel
    sigma = feather / 2.0

    # Draw only around the polygon: a 4K plate needs no full-frame blur for a face.
    reach = int(np.ceil(abs(grow) + 3 * sigma)) + 2
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - reach, 0)
    x1, y1 = np.minimum(np.ceil(polygon.max(axis=0)).astype(int) + reach + 1, [width, height])
    mask = np.zeros((height, width), np.float32)
    if x1 <= x0 or y1 <= y0:
        return mask
    region = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4  # sub-pixel vertex positions: a 128 px crop has no pixels to spare
    vertices = np.round((polygon - [x0, y0]) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(region, [vertices], 255, lineType=cv2.LINE_AA, shift=shift)
    if abs(grow) >= 0.5:
        radius = int(round(abs(grow)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        region = cv2.dilate(region, kernel) if grow > 0 else cv2.erode(region, kernel)
    soft = region.astype(np.float32) / 255.0
    if sigma > 0.3:
        soft = cv2.GaussianBlur(soft, (0, 0), sigma)
    mask[y0:y1, x0:x1] = np.clip(soft, 0.0, 1.0)
    return mask


def shot_mask(shot: Shot, track: Track, frame: int, shape_hw: tuple[int, int], M: np.ndarray | None = None) -> np.ndarray:
    """The mask a render uses on one plate frame: empty where the shot bypasses the frame, else the
    shot's face's automatic mask with the frame's overrides, then the frame's painted mask (which
    may stand where no face was found)."""
    if shot.bypassed(frame):
        return np.zeros(shape_hw, np.float32)
    index = track.index(frame)
    face = track.face(shot.face)
    if face.present[index]:
        mask = lower_face_mask(face.landmarks[index], shape_hw, M, shot.overrides(frame), face.shape)
    else:
        mask = np.zeros(shape_hw, np.float32)
    return shot.apply_painted(mask, frame, M)
