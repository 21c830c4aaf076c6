"""The mouth from the actor's own frames: for every frame of the dub, the shot's frame whose mouth is nearest the
target shape (select.py), its lower face warped onto the target frame's geometry and the target mouth shape
(warp.py) at the plate's resolution, colour-matched at the mask's edge and blended inside the shot's mask.

Real texture at full resolution (lip edges, teeth, stubble) instead of a generated 128-px crop scaled up. What it
cannot do yet: a mouth opening wider than any frame of the footage draws out the middle of the widest one (the
report says how far).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..face import geometry
from ..face.landmarks import face_size
from ..face.track import FaceTrack, Track
from ..media.colour import blend
from ..media.frames import open_plate
from ..motion.shape import CROP_UNITS, SHAPE_POINTS, opening, width
from ..motion.stage import MotionCurves
from .select import select_sources
from .warp import follow, lower_face_points, mouth_points, warp_triangles

REGION_MARGIN = 0.15  # of the face's height, kept around a source frame's lower face
EDGE_BAND = (0.02, 0.6)  # mask values whose pixels (the feathered edge: skin) set the colour match
COVERAGE_FEATHER = 0.04  # of the face's height: the warped face fades out this far inside its outline
COVERAGE_WARNING = 0.8  # below this share of the dub's widest opening, the report asks for more footage
MAX_STRETCH = 0.12  # of the mouth's width: the farthest a source lip point is moved towards the target shape


@dataclass
class Region:
    """A source frame's lower face: the pixels and where they sit in the plate."""

    x0: int
    y0: int
    pixels: np.ndarray


class FootageMouth:
    """The appearance stage of one shot: selection over the whole shot, then any frame on request."""

    def __init__(self, plate: Path, track: Track, face: FaceTrack, usable: np.ndarray, footage_shapes: np.ndarray,
                 curves: MotionCurves):
        self.plate, self.track, self.face, self.curves = plate, track, face, curves
        poses = np.zeros((len(track), 3))
        for i in np.flatnonzero(face.present):
            poses[i] = geometry.euler_angles(geometry.head_pose(face.landmarks[i], face.shape)[0])
        self.selection = select_sources(curves.shapes, usable, footage_shapes, usable, poses)
        self.regions: dict[int, Region] = {}
        widest_source = float(np.nanmax(opening(footage_shapes[usable]) - opening(curves.rest))) if usable.any() else 0.0
        widest_target = float(curves.opening[usable].max()) if usable.any() else 0.0
        self.coverage = 1.0 if widest_target <= 0 else min(1.0, max(widest_source, 0.0) / widest_target)

    def coverage_note(self) -> str | None:
        """What the report says when the footage never opens the mouth as wide as the dub asks."""
        if self.coverage >= COVERAGE_WARNING:
            return None
        return (f"the widest mouth opening in this shot is {self.coverage:.0%} of the dub's widest: wider frames are "
                f"stretched from it (add footage of the actor where the mouth opens wider)")

    def has_sources(self, indices: range) -> bool:
        """Whether the source frames of target frames `indices` (track positions) are loaded."""
        return all(self.selection[i] < 0 or int(self.selection[i]) in self.regions for i in indices)

    def load_sources(self, indices: range, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Decode the source frames the target frames `indices` (track positions) use, keeping only their lower
        faces; frames no longer needed are dropped, so memory follows the chunk, not the shot."""
        needed = {int(self.selection[i]) for i in indices if self.selection[i] >= 0}
        self.regions = {j: r for j, r in self.regions.items() if j in needed}
        missing = sorted(needed - set(self.regions))
        if not missing:
            return
        numbers = self.track.frames
        with open_plate(self.plate, frames=(int(numbers[missing[0]]), int(numbers[missing[-1]]))) as plate:
            wanted = {int(numbers[j]): j for j in missing}
            for frame in plate:
                if cancelled():
                    return
                j = wanted.get(frame.number)
                if j is not None:
                    self.regions[j] = self._region(frame.image, j)

    def _region(self, image: np.ndarray, j: int) -> Region:
        points = self.face.landmarks[j][lower_face_points(), :2]
        margin = REGION_MARGIN * float(face_size(self.face.landmarks[j]))
        x0, y0 = np.maximum(np.floor(points.min(0) - margin).astype(int), 0)
        x1, y1 = np.ceil(points.max(0) + margin).astype(int) + 1
        return Region(int(x0), int(y0), image[y0:y1, x0:x1, :3].copy())

    def target_points(self, index: int, source: int) -> np.ndarray:
        """(478, 2) where the source frame's lower-face points land on target frame `index`, in its plate: the
        source's face moved with the skull onto the target's, its lips and jaw on the target shape."""
        to_crop = self.face.alignment(index, CROP_UNITS)
        to_plate = geometry.invert(to_crop)
        source_crop = geometry.transform_points(self.face.landmarks[source], self.face.alignment(source, CROP_UNITS))
        # The source's lips moved to the target shape, but no point further than MAX_STRETCH of the mouth's
        # width: a closed mouth stretched wide open is a dark hole, worse than a mouth opening a little less.
        shape = source_crop[list(SHAPE_POINTS)]
        move = self.curves.shapes[index] - shape
        limit = MAX_STRETCH * float(width(shape[None])[0])
        longest = float(np.linalg.norm(move, axis=1).max())
        if longest > limit:
            move *= limit / longest
        return geometry.transform_points(follow(source_crop, list(SHAPE_POINTS), move), to_plate)

    def render(self, image: np.ndarray, index: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index` (track position) of the plate with the selected source mouth blended in through `mask`
        (plate-sized, feathered). Returns the image and the mask actually used."""
        source = int(self.selection[index])
        region = self.regions[source]
        target = self.target_points(index, source)
        lower = target[lower_face_points()]
        height, width = image.shape[:2]
        x0, y0 = np.maximum(np.floor(lower.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(lower.max(0)).astype(int) + 3, [width, height])
        used = np.zeros_like(mask)
        if x1 <= x0 or y1 <= y0:
            return image, used
        source_points, target_points = mouth_points(self.face.landmarks[source][:, :2] - [region.x0, region.y0],
                                                    target - [x0, y0])
        feather = COVERAGE_FEATHER * float(face_size(self.face.landmarks[index]))
        warped, covered = warp_triangles(region.pixels, source_points, target_points, (y1 - y0, x1 - x0), feather)
        box_mask = mask[y0:y1, x0:x1] * covered
        original = image[y0:y1, x0:x1, :3].astype(np.float32)
        edge = (box_mask > EDGE_BAND[0]) & (box_mask < EDGE_BAND[1])
        if edge.sum() >= 16:  # the lighting of the source frame is not the target's: match at the edge
            warped += (original[edge] - warped[edge]).mean(0)
        result = image.copy()
        result[y0:y1, x0:x1] = blend(image[y0:y1, x0:x1], warped, box_mask)
        used[y0:y1, x0:x1] = box_mask
        return result, used
