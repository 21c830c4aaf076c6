"""Build resources/face/canonical_face.npy: the mean face mesh of frontal faces in the training data.

MediaPipe 0.10.21 does not ship its canonical face model, so the project builds its own, once:
    python -m lipsync_core.face.make_canonical [DATA_DIR]
The face mesh runs over frames of the train clips in DATA_DIR/av and the photos in DATA_DIR/images;
frontal-ish faces are aligned to each other with similarity Procrustes on the rigid landmarks
(generalized: align to the mean, re-average, repeat) and averaged. The result is rotated so it faces
the camera squarely, centred on the rigid points and scaled to unit outer-eye-corner distance.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from .geometry import CANONICAL_FACE, similarity
from .landmarks import LEFT_EYE_CORNERS, NOSE_TIP, RIGHT_EYE_CORNERS, RIGID, CHIN, FOREHEAD
from .tracker import FaceMeshDetector

FRAME_STEP = 10  # frames of a clip are highly alike: every 10th is plenty
MAX_YAW_PROXY = 0.06  # nose tip off the eyes' midpoint, in eye distances
MAX_ROLL_DEGREES = 6.0


def _frontal(points: np.ndarray) -> bool:
    right = points[RIGHT_EYE_CORNERS[0], :2]
    left = points[LEFT_EYE_CORNERS[0], :2]
    eye_distance = np.hypot(*(left - right))
    roll = np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))
    yaw = abs(points[NOSE_TIP, 0] - (left[0] + right[0]) / 2) / eye_distance
    return yaw < MAX_YAW_PROXY and abs(roll) < MAX_ROLL_DEGREES


def _largest(faces: list[np.ndarray]) -> np.ndarray | None:
    return max(faces, key=lambda f: np.ptp(f[:, 1]), default=None)


def collect(data: Path) -> list[np.ndarray]:
    from ..media.frames import open_plate

    faces = []
    with open(data / "manifest.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "train" and r["kind"] in ("av", "image")]
    for row in rows:
        path = data / row["file"]
        if row["kind"] == "image":
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            frames = [] if image is None else [image[..., ::-1]]
        else:
            frames = (f.image for i, f in enumerate(open_plate(path)) if i % FRAME_STEP == 0)
        # A fresh detector per file: frames FRAME_STEP apart are no stream to track.
        with FaceMeshDetector() as detect:
            for image in frames:
                face = _largest(detect(image))
                if face is not None and _frontal(face):
                    faces.append(face.astype(np.float64))
        print(f"{len(faces):6d} frontal faces after {row['file']}", file=sys.stderr)
    return faces


def average(faces: list[np.ndarray], iterations: int = 5) -> np.ndarray:
    rigid = list(RIGID)
    mean = faces[0]
    for _ in range(iterations):
        aligned = []
        for face in faces:
            R, t, s = similarity(face[rigid], mean[rigid])
            aligned.append(face @ (s * R).T + t)
        mean = np.mean(aligned, axis=0)
    return _normalize(mean)


def _normalize(face: np.ndarray) -> np.ndarray:
    """Square to the camera: x along the eye corners, y along forehead-to-chin made perpendicular to
    x, z = x cross y (away from the camera); centred on the rigid points; unit outer-eye distance."""
    x = face[LEFT_EYE_CORNERS[0]] - face[RIGHT_EYE_CORNERS[0]]
    eye_distance = np.linalg.norm(x)
    x /= eye_distance
    y = face[CHIN] - face[FOREHEAD]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    axes = np.stack([x, y, np.cross(x, y)])
    centred = face - face[list(RIGID)].mean(axis=0)
    return (centred @ axes.T / eye_distance).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("-o", "--output", type=Path, default=CANONICAL_FACE)
    args = parser.parse_args(argv)
    faces = collect(args.data)
    if len(faces) < 10:
        print(f"only {len(faces)} frontal faces found in {args.data}: not enough", file=sys.stderr)
        return 1
    canonical = average(faces)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.output, canonical)
    print(f"{args.output}: mean of {len(faces)} frontal faces", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
