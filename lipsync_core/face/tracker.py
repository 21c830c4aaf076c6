"""Face tracking: MediaPipe face mesh per frame, small faces through the full-range detector, stable
face ids across frames, One Euro smoothing. `track_plate(path)` is the one call most code needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..media.colour import to_display
from ..media.fingerprint import plate_fingerprint
from ..media.frames import open_plate
from ..media.ocio import PlateSpace
from .geometry import face_shape
from .landmarks import COUNT, FACE_OVAL, LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, face_size
from .native_log import NativeStderrSilenced
from .smoothing import one_euro
from .track import FaceTrack, Track

# The mesh's own short-range detector misses faces under ~15% of the frame height, and faces turned
# or dimly lit. The full-range detector finds them. It runs when the mesh finds nothing, every
# REDETECT_EVERY frames (to find such faces beside one the mesh tracks), and at once when a face
# followed so far is lost; it looks at square tiles of the frame, so a wide frame's faces are not
# shrunk further to fit its square input. The landmark model (the mesh's own, without its detector)
# then runs on the detector's box, and on later frames on the box of the face's previous landmarks,
# as the mesh itself tracks.
REDETECT_EVERY = 5
# Landmark model input around a face box, as MediaPipe sizes it: 1.5 times the box's longer side.
ROI_SCALE = 1.5
# Two faces whose boxes overlap more than this are the same face (duplicates, or the same person on
# the next frame).
SAME_FACE_IOU = 0.3
MAX_FACES = 4

# MediaPipe's face landmark subgraph fed a region of interest: the mesh's second half.
_LANDMARKS_IN_ROI = """
input_stream: "image"
input_stream: "roi"
output_stream: "face_landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:face_landmarks"
}
"""


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


@dataclass(frozen=True)
class _Region:
    """Where to run the landmark model: a square around a face, turned with it (pixels, radians)."""

    centre: tuple[float, float]
    side: float
    rotation: float

    @classmethod
    def around(cls, box: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> _Region:
        dx, dy = left_eye - right_eye
        centre = (box[:2] + box[2:]) / 2
        return cls((float(centre[0]), float(centre[1])), float(max(box[2:] - box[:2])) * ROI_SCALE, float(np.arctan2(dy, dx)))

    def box(self) -> np.ndarray:
        half = self.side / ROI_SCALE / 2
        return np.array([self.centre[0] - half, self.centre[1] - half, self.centre[0] + half, self.centre[1] + half])


class FaceMeshDetector:
    """Per-frame landmarks of every face in a stream of RGB uint8 images (in order: it tracks).

    Call it once per frame; it returns a list of (478, 3) float32 arrays in pixel coordinates of the
    image (z: MediaPipe's depth, in the x scale; smaller is nearer the camera).
    """

    def __init__(self, max_faces: int = MAX_FACES, redetect_every: int = REDETECT_EVERY):
        self._quiet = NativeStderrSilenced()
        self._quiet.start()
        try:
            self._create(max_faces, redetect_every)
        except BaseException:
            self._quiet.stop()
            raise

    def _create(self, max_faces: int, redetect_every: int) -> None:
        import mediapipe as mp  # imported here: loading it takes a second and a CLI's --help needs none
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python.solution_base import SolutionBase

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5,
        )
        graph = text_format.Parse(_LANDMARKS_IN_ROI, calculator_pb2.CalculatorGraphConfig())
        self._roi_landmarks = SolutionBase(graph_config=graph, side_inputs={"with_attention": True})
        self._rect = rect_pb2.NormalizedRect
        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._redetect_every = redetect_every
        self._frame = 0
        self._followed: list[_Region] = []  # faces found outside the mesh on the last frame
        self._expected = 0  # faces on the frame of the last detection

    def close(self) -> None:
        try:
            for graph in (self._mesh, self._roi_landmarks, self._detector):
                graph.close()
        finally:
            self._quiet.stop()

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        image = np.ascontiguousarray(image)
        scale = np.array([image.shape[1], image.shape[0], image.shape[1]], dtype=np.float32)  # z is normalized like x
        faces = [self._points(face, scale) for face in self._mesh.process(image).multi_face_landmarks or []]
        followed = self._add_faces(image, self._followed, faces)
        # Detect again on schedule, and at once when a face followed so far was lost on this frame.
        if not faces or self._frame % self._redetect_every == 0 or len(faces) < self._expected:
            followed += self._add_faces(image, self._detections(image), faces)
            self._expected = len(faces)
        self._followed = [
            _Region.around(_box(points), points[RIGHT_EYE_CORNERS[0], :2], points[LEFT_EYE_CORNERS[0], :2])
            for points in followed
        ]
        self._frame += 1
        return faces

    def _add_faces(self, image: np.ndarray, regions: list[_Region], faces: list[np.ndarray]) -> list[np.ndarray]:
        """Run the landmark model on each region not already holding a face; append what it finds to
        `faces` and return the new ones."""
        height, width = image.shape[:2]
        scale = np.array([width, height, width], dtype=np.float32)
        added = []
        for region in regions:
            if any(_iou(region.box(), _box(face)) > SAME_FACE_IOU for face in faces):
                continue
            roi = self._rect(
                x_center=region.centre[0] / width, y_center=region.centre[1] / height,
                width=region.side / width, height=region.side / height, rotation=region.rotation,
            )
            found = self._roi_landmarks.process({"image": image, "roi": roi}).face_landmarks
            if found is None:
                continue  # the landmark model's own face presence score says no face
            points = self._points(found, scale)
            if not any(_iou(_box(points), _box(face)) > SAME_FACE_IOU for face in faces):
                faces.append(points)
                added.append(points)
        return added

    @staticmethod
    def _points(landmarks, scale: np.ndarray) -> np.ndarray:
        return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32) * scale

    def _detections(self, image: np.ndarray) -> list[_Region]:
        """Full-range detections over square tiles of the frame: the detector squeezes its input to
        192 x 192, so a wide or tall frame seen whole would shrink its faces further."""
        height, width = image.shape[:2]
        side = min(width, height)
        count = int(np.ceil(max(width, height) / side - 0.1))  # a frame barely wider than square: one tile
        starts = np.linspace(0, max(width, height) - side, count).round().astype(int) if count > 1 else [0]
        regions = []
        for start in starts:
            x0, y0 = (start, 0) if width > height else (0, start)
            tile = image if count == 1 else np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
            size = np.array([tile.shape[1], tile.shape[0]])
            offset = np.array([x0, y0])
            for detection in self._detector.process(tile).detections or []:
                b = detection.location_data.relative_bounding_box
                box = np.array([b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height]) * np.tile(size, 2) + np.tile(offset, 2)
                # Keypoint 0 is the right eye, 1 the left.
                eyes = [np.array([k.x, k.y]) * size + offset for k in detection.location_data.relative_keypoints[:2]]
                regions.append(_Region.around(box, *eyes))
        return regions


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


def to_uint8_rgb(image: np.ndarray, space: PlateSpace | None = None) -> np.ndarray:
    """The 8-bit display RGB image MediaPipe wants, from a plate frame of any kind (float plates are
    scene-linear, or in `space`: converted to display first)."""
    if image.dtype == np.uint8:
        return image[..., :3]
    return (to_display(image, space) * 255.0 + 0.5).astype(np.uint8)


def track_plate(
    path: str | Path,
    frames: tuple[int, int] | None = None,
    smooth: bool = True,
    progress: Callable[[int], None] | None = None,
    space: PlateSpace | None = None,
) -> Track:
    """Track every face in a plate (video file or image sequence), optionally over an inclusive range
    of the plate's own frame numbers; a float plate in `space` when one is given."""
    with open_plate(path, frames=frames) as plate:
        # Taken before the frames are read: a plate replaced while it is tracked does not pass as this one.
        source = plate_fingerprint(path, (plate.info.first, plate.info.last))
        numbers, times = [], []

        def images():
            for frame in plate:
                numbers.append(frame.number)
                times.append(frame.time)
                yield to_uint8_rgb(frame.image, space)

        found, shapes = _detect_all(images(), progress)
        faces = _face_tracks(found, shapes, np.array(times), smooth)
        return Track(str(path), np.array(numbers, dtype=np.int64), np.array(times), plate.info.width, plate.info.height, faces,
                     source, space.key if space is not None else "")
