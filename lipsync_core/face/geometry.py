"""The crop geometry, in one place: the similarity transform from a plate to the model's aligned
square crop (and back), and the head pose against the canonical face.

Transforms are 2x3 float64 matrices mapping plate pixels (x, y) to crop pixels, as cv2.warpAffine
takes them. Pixel coordinates put (0, 0) at the centre of the top-left pixel, as OpenCV does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .landmarks import LEFT_EYE_CORNERS, MOUTH_CORNERS, RIGHT_EYE_CORNERS, RIGID

# Where the crop's centre lies from the eyes' midpoint towards the mouth, in eye-to-mouth distances.
# FFHQ uses 0.1; measured on the av/ clips that puts the chin at 0.90-0.98 of the crop's height,
# with no room for a jaw that drops further than in the source (the mask reaches ~1.05). At 0.35
# the chin lies at 0.83-0.91 and the dropped-jaw mask inside the crop; the forehead loses a little.
CENTRE_BELOW_EYES = 0.35

CANONICAL_FACE = Path(__file__).resolve().parents[2] / "resources" / "face" / "canonical_face.npy"


# ------------------------------------------------------------------------------------ alignment


def alignment_matrix(landmarks: np.ndarray, size: int, face: np.ndarray | None = None) -> np.ndarray:
    """Plate -> aligned crop transform for one face, FFHQ-style, for a square crop of `size` pixels.

    The crop is rotated so the eyes are level and scaled from the larger of the eye-to-eye and
    eye-to-mouth distances, as FFHQ's; it is centred lower than FFHQ's (see CENTRE_BELOW_EYES), so
    the whole face with the chin and room below it is in the crop and the mouth in its lower half.

    The eye centres are the midpoints of each eye's corners (the iris moves with gaze, the lids with
    blinks; the corners do neither). With 3D landmarks the mouth corners are those of `face` (the
    person's own face from `face_shape`, or the canonical face) posed on the rigid landmarks, not the
    observed ones: a mouth that opens pulls its corners down, and the crop must not zoom with speech
    (a model could read the mouth from the crop's framing). With 2D landmarks the observed corners
    are used.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    points = landmarks[:, :2]
    if landmarks.shape[1] == 3:
        face = canonical_face() if face is None else face
        R, t, s = head_pose(landmarks, face)
        mouth = (s * face[list(MOUTH_CORNERS)] @ R.T + t)[:, :2].mean(axis=0)
    else:
        mouth = points[list(MOUTH_CORNERS)].mean(axis=0)
    eye_right = points[list(RIGHT_EYE_CORNERS)].mean(axis=0)  # on the image's left
    eye_left = points[list(LEFT_EYE_CORNERS)].mean(axis=0)
    eye_avg = (eye_right + eye_left) / 2
    eye_to_eye = eye_left - eye_right
    eye_to_mouth = mouth - eye_avg
    # x axis: the eye line averaged with the eye-mouth line turned 90 degrees, so both set the roll.
    x = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
    x /= np.hypot(*x)
    half_side = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eye_avg + eye_to_mouth * CENTRE_BELOW_EYES
    y = np.array([-x[1], x[0]])  # x turned 90 degrees towards the chin (image y points down)
    rotation = np.stack([x, y]) * (size / (2.0 * half_side))
    # The crop's centre is at (size - 1) / 2 in pixel-centre coordinates.
    offset = (size - 1) / 2.0 - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


def invert(M: np.ndarray) -> np.ndarray:
    """The inverse transform (crop -> plate)."""
    return cv2.invertAffineTransform(np.asarray(M, dtype=np.float64))


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply a 2x3 transform to (..., 2) points (extra columns, e.g. z, are dropped)."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    return points @ M[:, :2].T + M[:, 2]


def from_corner(M: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """The plate -> crop matrix M for points measured from the plate's point (x0, y0): for working in a box of it."""
    box = np.asarray(M, dtype=np.float64).copy()
    box[:, 2] += box[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return box


def scale_of(M: np.ndarray) -> float:
    """Crop pixels per plate pixel."""
    return float(np.sqrt(abs(np.linalg.det(M[:, :2]))))


def warp_to_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned crop out of a plate image (uint8 or float, any channel count).

    A face is usually shrunk into the crop (a 500 px face into 128 px): bilinear sampling alone would
    alias there, so the region the crop covers is first shrunk with area averaging to about the crop's
    scale, and only the small residual warp is bilinear. Outside the plate the edge pixels repeat.
    """
    scale = scale_of(M)
    if scale < 0.8:
        corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]]), invert(M))
        height, width = image.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [width - 1, height - 1])
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 3, [x0 + 1, y0 + 1], [width, height])
        region = image[y0:y1, x0:x1]
        small_w, small_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
        # Pixel centres: small pixel j covers region pixels around (j + 0.5) / f - 0.5.
        fx, fy = small_w / (x1 - x0), small_h / (y1 - y0)
        small_to_plate = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]])
        M = M @ small_to_plate
        image = small
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_from_crop(crop: np.ndarray, M: np.ndarray, plate_shape: tuple[int, ...]) -> np.ndarray:
    """Put a crop (image or mask) back into plate space: a plate-sized array, zero outside the crop."""
    height, width = plate_shape[:2]
    return cv2.warpAffine(
        crop, np.asarray(M, dtype=np.float64), (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


# ------------------------------------------------------------------------------------ head pose


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity (R, t, s) with target ~ s * R @ source + t, for (N, D) point sets
    (Umeyama 1991). R is a proper rotation (no reflection)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    d = np.ones(len(sigma))
    d[-1] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    R = u @ np.diag(d) @ vt
    s = float((sigma * d).sum() / (a**2).sum(axis=1).mean())
    t = mu_t - s * R @ mu_s
    return R, t, s


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """The canonical face (478, 3): the mean MediaPipe mesh of frontal faces (built by
    make_canonical.py); x towards the subject's left, y down, z away from the camera; centred on the
    rigid points, unit distance between the outer eye corners."""
    face = np.load(CANONICAL_FACE, allow_pickle=False)
    face.setflags(write=False)
    return face


def head_pose(landmarks3d: np.ndarray, face: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Head pose of one face: (R, t, scale) with landmarks ~ scale * R @ face + t, fitted on the rigid
    landmarks only (forehead, temples, eye corners, nose), so speech does not move it. `face` is the
    person's own face (`face_shape`) or, by default, the canonical face.

    Coordinates are the landmarks' own (plate pixels, z in the x scale): MediaPipe's mesh is a weak
    perspective model, so the pose projects to the image by dropping z.
    """
    face = canonical_face() if face is None else face
    rigid = list(RIGID)
    return similarity(face[rigid], np.asarray(landmarks3d, dtype=np.float64)[rigid])


def face_shape(landmarks: np.ndarray) -> np.ndarray:
    """One person's own face (478, 3) in the canonical face's frame and units, from their landmarks
    over a shot (frames, 478, 3; NaN frames are skipped): the median of the frames with the head pose
    taken out. Faces differ (a long jaw, a wide mouth) more than one canonical face allows for; the
    crop and the mask fit the person. It is one shape for the whole shot, so it does not follow the
    mouth from frame to frame."""
    unposed = []
    for points in np.asarray(landmarks, dtype=np.float64):
        if np.isfinite(points).all():
            R, t, s = head_pose(points)
            unposed.append((points - t) @ R / s)
    if not unposed:
        return canonical_face().copy()
    return np.median(unposed, axis=0).astype(np.float32)


def euler_angles(R: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, with R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in image axes (x right,
    y down, z away from the camera). In the image: yaw > 0 turns the nose towards the image's left,
    pitch > 0 tips it down, roll > 0 tilts the head clockwise."""
    yaw = np.degrees(np.arcsin(np.clip(-R[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(R[2, 1], R[2, 2]))
    roll = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    return float(yaw), float(pitch), float(roll)
