"""`Track`: the result of face tracking over a plate, and its .npz cache file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceError
from ..mask_controls import MaskOverrides
from .geometry import alignment_matrix
from .landmarks import COUNT, face_size
from .mask import lower_face_mask

FORMAT_VERSION = 3  # 2: per-face shape; 3: the plate's fingerprint


@dataclass
class FaceTrack:
    """One person over the frames of a track. Face ids are indices into `Track.faces`."""

    landmarks: np.ndarray  # (frames, 478, 3) float32 plate pixels (z in the x scale), NaN where absent
    present: np.ndarray  # (frames,) bool: the face was found on that frame
    partial: np.ndarray  # (frames,) bool: found, but its outline runs past the frame edge
    shape: np.ndarray  # (478, 3) float32: this person's own face in the canonical frame (geometry.face_shape)

    def alignment(self, index: int, size: int) -> np.ndarray | None:
        """Plate -> aligned crop transform on the track's index-th frame (None where absent)."""
        if not self.present[index]:
            return None
        return alignment_matrix(self.landmarks[index], size, self.shape)

    def mask(
        self, index: int, shape_hw: tuple[int, int], M: np.ndarray | None = None, overrides: MaskOverrides | None = None
    ) -> np.ndarray:
        """The lower-face mask on the track's index-th frame, in the plate or (with M) the crop; empty
        where the face is absent."""
        if not self.present[index]:
            return np.zeros(shape_hw, np.float32)
        return lower_face_mask(self.landmarks[index], shape_hw, M, overrides, self.shape)

    def size(self) -> float:
        """Median face height in pixels over the frames it is present."""
        return float(np.median(face_size(self.landmarks[self.present]))) if self.present.any() else 0.0


@dataclass
class Track:
    """Faces tracked over a plate. Face 0 is the main face (the largest, longest on screen); ids are
    stable over the whole track."""

    plate: str
    frames: np.ndarray  # (frames,) int: the plate's own frame numbers
    times: np.ndarray  # (frames,) float seconds
    width: int
    height: int
    faces: list[FaceTrack]
    source: str = ""  # media.fingerprint.plate_fingerprint of the plate over these frames, when it was tracked
    colourspace: str = ""  # media.ocio.PlateSpace.key of the space a float plate was read in; "" for the sRGB default

    def __len__(self) -> int:
        return len(self.frames)

    def face(self, face_id: int = 0) -> FaceTrack:
        if not 0 <= face_id < len(self.faces):
            raise FaceError(
                f"{self.plate}: face {face_id} does not exist; the track holds "
                + (f"faces 0-{len(self.faces) - 1}" if self.faces else "no face")
            )
        return self.faces[face_id]

    def index(self, frame: int) -> int:
        """Position of a plate frame number in the track."""
        hits = np.flatnonzero(self.frames == frame)
        if not len(hits):
            raise FaceError(f"{self.plate}: frame {frame} is not in the track ({self.frames[0]}-{self.frames[-1]})")
        return int(hits[0])

    def landmarks(self, frame: int, face_id: int = 0) -> np.ndarray | None:
        """(478, 3) landmarks of a face on a plate frame, or None where it was not found."""
        face, i = self.face(face_id), self.index(frame)
        return face.landmarks[i] if face.present[i] else None

    def save(self, path: str | Path) -> None:
        path = Path(path)
        # A hidden name of this process's own: two processes saving one track never write the same file.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        try:
            self._write(temporary)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)  # a full disk or a cancel leaves no half-written file beside the plate

    def _write(self, path: Path) -> None:
        n = len(self)
        np.savez_compressed(
            path,
            version=FORMAT_VERSION,
            plate=self.plate,
            frames=self.frames,
            times=self.times,
            size=np.array([self.width, self.height]),
            landmarks=np.array([f.landmarks for f in self.faces], np.float32).reshape(-1, n, COUNT, 3),
            present=np.array([f.present for f in self.faces], bool).reshape(-1, n),
            partial=np.array([f.partial for f in self.faces], bool).reshape(-1, n),
            shape=np.array([f.shape for f in self.faces], np.float32).reshape(-1, COUNT, 3),
            source=self.source,
            colourspace=self.colourspace,
        )

    @classmethod
    def load(cls, path: str | Path) -> Track:
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise FaceError(f"{path}: not a readable face track ({error})") from error
        if int(data["version"]) != FORMAT_VERSION:
            raise FaceError(f"{path}: face track format {int(data['version'])}, expected {FORMAT_VERSION}: re-run analyze")
        faces = [FaceTrack(*arrays) for arrays in zip(data["landmarks"], data["present"], data["partial"], data["shape"])]
        width, height = (int(v) for v in data["size"])
        colourspace = str(data["colourspace"]) if "colourspace" in data.files else ""  # tracks cached before it: none
        return cls(str(data["plate"]), data["frames"], data["times"], width, height, faces, str(data["source"]), colourspace)
