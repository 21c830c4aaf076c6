"""Face tracking: MediaPipe face mesh per frame, small faces through the full-range detector, stable
face ids across frames, One Euro smoothing. `track_plate(path)` is the one call most code needs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..media.colour import to_display
from ..media.frames import open_plate
from .geometry import face_shape
from .landmarks import COUNT, FACE_OVAL, face_size
from .smoothing import one_euro
from .track import FaceTrack, Track

# The mesh's own short-range detector misses faces under ~15% of the frame height. The full-range
# detector finds them; it runs when the mesh finds nothing, and every REDETECT_EVERY frames to find
# small faces beside a large one. Between those frames a small face is followed by cropping around
# where it was on the previous frame.
REDETECT_EVERY = 5
# Crop side around a small face, in face boxes: room for the mesh's own detector to see a whole face.
CROP_MARGIN = 2.2
# Two faces whose boxes overlap more than this are the same face (duplicates, or the same person on
# the next frame).
SAME_FACE_IOU = 0.3
MAX_FACES = 4


def _box(points: np.ndarray) -> np.ndarray:
    """Axis-aligned (x0, y0, x1, y1) of a face's outline."""
    xy = points[list(FACE_OVAL), :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class FaceMeshDetector:
    """Per-frame landmarks of every face in a stream of RGB uint8 images (in order: it tracks).

    Call it once per frame; it returns a list of (478, 3) float32 arrays in pixel coordinates of the
    image (z: MediaPipe's depth, in the x scale; smaller is nearer the camera).
    """

    def __init__(self, max_faces: int = MAX_FACES, redetect_every: int = REDETECT_EVERY):
        import mediapipe as mp  # imported here: loading it takes a second and a CLI's --help needs none

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5,
        )
        # Crops are unrelated images from call to call: static mode, one face each.
        self._crop_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5,
        )
        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._redetect_every = redetect_every
        self._frame = 0
        self._small_faces: list[np.ndarray] = []  # boxes of faces found through crops on the last frame

    def close(self) -> None:
        for graph in (self._mesh, self._crop_mesh, self._detector):
            graph.close()

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        faces = self._mesh_faces(self._mesh, image, (0, 0, width, height))
        regions = list(self._small_faces)
        if not faces or self._frame % self._redetect_every == 0:
            regions += self._detections(image)
        self._frame += 1
        self._small_faces = []
        for region in regions:
            if any(_iou(region, _box(face)) > SAME_FACE_IOU for face in faces):
                continue
            found = self._mesh_faces(self._crop_mesh, image, self._crop_box(region, width, height))
            if found and not any(_iou(_box(found[0]), _box(face)) > SAME_FACE_IOU for face in faces):
                faces.append(found[0])
                self._small_faces.append(_box(found[0]))
        return faces

    def _detections(self, image: np.ndarray) -> list[np.ndarray]:
        height, width = image.shape[:2]
        boxes = []
        for detection in self._detector.process(image).detections or []:
            b = detection.location_data.relative_bounding_box
            boxes.append(np.array([b.xmin * width, b.ymin * height, (b.xmin + b.width) * width, (b.ymin + b.height) * height]))
        return boxes

    @staticmethod
    def _crop_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        centre = (box[:2] + box[2:]) / 2
        half = max(box[2] - box[0], box[3] - box[1]) * CROP_MARGIN / 2
        x0, y0 = np.maximum(np.floor(centre - half), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(centre + half), [width, height]).astype(int)
        return int(x0), int(y0), int(x1), int(y1)

    @staticmethod
    def _mesh_faces(mesh, image: np.ndarray, crop: tuple[int, int, int, int]) -> list[np.ndarray]:
        x0, y0, x1, y1 = crop
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        part = image if (x0, y0, x1, y1) == (0, 0, image.shape[1], image.shape[0]) else np.ascontiguousarray(image[y0:y1, x0:x1])
        result = mesh.process(part)
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            # Normalized to the crop; z is in the same scale as x.
            points *= np.array([x1 - x0, y1 - y0, x1 - x0], dtype=np.float32)
            points[:, :2] += np.array([x0, y0], dtype=np.float32)
            faces.append(points)
        return faces


class _Identities:
    """Gives each face found on a frame a stable id: the id of the face it overlaps most on an
    earlier frame (the most recent one wins ties), or a new id."""

    def __init__(self):
        self.last_box: list[np.ndarray] = []
        self.last_seen: list[int] = []

    def assign(self, frame: int, faces: list[np.ndarray]) -> list[int]:
        boxes = [_box(f) for f in faces]
        pairs = sorted(
            ((_iou(box, self.last_box[t]), self.last_seen[t], i, t) for i, box in enumerate(boxes) for t in range(len(self.last_box))),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(faces)
        taken: set[int] = set()
        for overlap, _, i, t in pairs:
            if overlap <= SAME_FACE_IOU:
                break
            if ids[i] is None and t not in taken:
                ids[i] = t
                taken.add(t)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = len(self.last_box)
                self.last_box.append(box)
                self.last_seen.append(frame)
            self.last_box[ids[i]] = box
            self.last_seen[ids[i]] = frame
        return ids


def track_frames(
    images: Iterable[np.ndarray],
    times: Iterable[float] | None = None,
    fps: float = 25.0,
    smooth: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[FaceTrack]:
    """Track every face through a sequence of RGB uint8 images.

    Returns one `FaceTrack` per person, the main face first (the one covering the most screen over
    time). times: seconds per frame, for smoothing (default frame / fps). progress(frames_done) is
    called after each frame.
    """
    found, shapes = _detect_all(images, progress)
    times = np.arange(len(found)) / fps if times is None else np.asarray(list(times), dtype=np.float64)
    return _face_tracks(found, shapes, times, smooth)


def _detect_all(images, progress):
    """Per frame: [(face id, landmarks)], and the image shapes."""
    found, shapes = [], []
    identities = _Identities()
    with FaceMeshDetector() as detect:
        for index, image in enumerate(images):
            faces = detect(image)
            found.append(list(zip(identities.assign(index, faces), faces)))
            shapes.append(image.shape[:2])
            if progress:
                progress(index + 1)
    return found, shapes


def _face_tracks(found, shapes, times, smooth) -> list[FaceTrack]:
    count = len(found)
    ids = {i for faces in found for i, _ in faces}
    tracks = []
    for face_id in sorted(ids):
        landmarks = np.full((count, COUNT, 3), np.nan, dtype=np.float32)
        for index, faces in enumerate(found):
            for i, points in faces:
                if i == face_id:
                    landmarks[index] = points
        present = np.isfinite(landmarks[:, 0, 0])
        if smooth:
            landmarks = one_euro(landmarks, times)
        partial = np.array([present[i] and _outside(landmarks[i], *shapes[i]) for i in range(count)], dtype=bool)
        tracks.append(FaceTrack(landmarks, present, partial, face_shape(landmarks)))
    # Main face first: the one covering the most screen over time.
    return sorted(tracks, key=lambda t: -float(np.nansum(face_size(t.landmarks))))


def _outside(points: np.ndarray, height: int, width: int) -> bool:
    xy = points[list(FACE_OVAL), :2]
    return bool((xy < 0).any() or (xy[:, 0] >= width).any() or (xy[:, 1] >= height).any())


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """The 8-bit display RGB image MediaPipe wants, from a plate frame of any kind (float plates are
    scene-linear: encoded to display first)."""
    if image.dtype == np.uint8:
        return image[..., :3]
    return (to_display(image) * 255.0 + 0.5).astype(np.uint8)


def track_plate(
    path: str | Path,
    frames: tuple[int, int] | None = None,
    smooth: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Track:
    """Track every face in a plate (video file or image sequence), optionally over an inclusive range
    of the plate's own frame numbers."""
    with open_plate(path, frames=frames) as plate:
        numbers, times = [], []

        def images():
            for frame in plate:
                numbers.append(frame.number)
                times.append(frame.time)
                yield to_uint8_rgb(frame.image)

        found, shapes = _detect_all(images(), progress)
        faces = _face_tracks(found, shapes, np.array(times), smooth)
        return Track(str(path), np.array(numbers, dtype=np.int64), np.array(times), plate.info.width, plate.info.height, faces)
