"""The mouth from the actor's own frames: for every frame of the dub, the frame of the actor whose mouth is nearest
the target shape (select.py) — from the shot itself or from footage of the same actor added with --appearance —
its lower face warped onto the target frame's geometry and the target mouth shape (warp.py) at the plate's
resolution, colour-matched to the plate's light from the mask's edge inwards and blended inside the shot's mask.

Real texture at full resolution (lip edges, teeth, stubble) instead of a generated 128-px crop scaled up. What it
cannot do yet: a mouth opening wider than any frame of the footage draws out the middle of the widest one (the
report says how far, and asks for footage where the actor opens wider).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from ..face import geometry
from ..face.landmarks import face_size
from ..face.track import FaceTrack, Track
from ..media.colour import blend, from_display, to_display
from ..media.frames import open_plate
from ..media.ocio import PlateSpace
from ..motion.shape import CROP_UNITS, SHAPE_POINTS, opening, rest_shape, width
from ..motion.stage import MotionCurves
from .select import select_sources
from .warp import follow, lower_face_points, mouth_points, warp_triangles

REGION_MARGIN = 0.15  # of the face's height, kept around a source frame's lower face
EDGE_BAND = (0.02, 0.6)  # mask values whose pixels (the feathered edge: skin) set the colour match
COVERAGE_FEATHER = 0.04  # of the face's height: the warped face fades out this far inside its outline
COVERAGE_WARNING = 0.8  # below this share of the dub's widest opening, the report asks for more footage
MAX_STRETCH = 0.12  # of the mouth's width: the farthest a source lip point is moved towards the target shape
CORRECTION_SIGMA = 0.12  # of the face's height: how far the colour correction varies (light, not texture)
CORRECTION_PIXELS = 4.0  # the blur's sigma on the shrunken copy the correction is computed on
ADDED_COST = 0.25  # crop units: a frame of added footage (other light, other day) against one of the shot's own


@dataclass
class Footage:
    """Frames of the actor that can lend their mouths: the shot's own, or a clip added with --appearance."""

    plate: Path
    track: Track
    face: FaceTrack
    usable: np.ndarray  # (N,) frames whose face is wholly in view and not bypassed
    shapes: np.ndarray  # (N, P, 2) mouth shapes, CROP_UNITS

    def poses(self) -> np.ndarray:
        """(N, 2) yaw and pitch in degrees (0 where the face is absent): how the mouth is seen. Roll is left out:
        the warp aligns a tilted head anyway."""
        poses = np.zeros((len(self.track), 2))
        for i in np.flatnonzero(self.face.present):
            poses[i] = geometry.euler_angles(geometry.head_pose(self.face.landmarks[i], self.face.shape)[0])[:2]
        return poses


@dataclass
class Warped:
    """A source's lower face warped onto a target frame: its box in the plate, its pixels there (h, w, C) float32 in
    the plate's encoding, and where they are the source's (h, w) float32, feathered inside the outline."""

    x0: int
    y0: int
    pixels: np.ndarray
    covered: np.ndarray

    @property
    def box(self) -> tuple[slice, slice]:
        height, width = self.covered.shape
        return slice(self.y0, self.y0 + height), slice(self.x0, self.x0 + width)


@dataclass
class Region:
    """A source frame's lower face: the pixels and where they sit in its plate."""

    x0: int
    y0: int
    pixels: np.ndarray


def light_weight(difference: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """(H, W) how much each pixel of the mask's feathered `edge` says about the light: 1 for a difference like
    the edge's typical one, falling smoothly to 0 (Tukey's biweight on the median absolute deviation) for a pixel
    that differs far more than the rest. Those are geometry, not light: the jaw moved, so the plate shows chin
    where the warped face shows neck, or the face's outline met the background."""
    values = difference[edge]
    typical = np.median(values, axis=0)
    deviation = np.abs(values - typical)
    spread = np.median(deviation, axis=0)
    # 4.685 robust standard deviations (1.4826 x MAD): the biweight's usual cut, 95% efficient on clean data.
    scale = np.maximum(4.685 * 1.4826 * spread, 1e-6 * (1.0 + np.abs(typical)))
    distance = (deviation / scale).max(axis=1)
    weight = np.zeros(edge.shape, np.float32)
    weight[edge] = np.clip(1.0 - distance**2, 0.0, 1.0) ** 2
    return weight


def colour_correction(difference: np.ndarray, edge: np.ndarray, face_height: float) -> np.ndarray:
    """(H, W, C) a smooth correction that takes the warped face to the plate's light: the plate-minus-warped
    `difference` at the mask's feathered `edge`, spread inwards by a normalised Gaussian (light falling across
    a face differs from one side of the mouth to the other; one offset for the whole box leaves a seam where the
    two differ). Edge pixels that differ for another reason than light count less (`light_weight`). Far from any
    edge pixel it is the edge's weighted mean difference."""
    height, width = edge.shape
    trusted = light_weight(difference, edge)
    # Light varies slowly: the spreading runs on a copy small enough for a blur of CORRECTION_PIXELS.
    sigma = CORRECTION_SIGMA * face_height
    shrink = max(1.0, sigma / CORRECTION_PIXELS)
    size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    weight = cv2.resize(trusted, size, interpolation=cv2.INTER_AREA)
    weighted = cv2.resize(difference * trusted[..., None], size, interpolation=cv2.INTER_AREA)
    spread = cv2.GaussianBlur(weight, (0, 0), sigma / shrink)
    total = cv2.GaussianBlur(weighted, (0, 0), sigma / shrink)
    if total.ndim == 2:
        total = total[..., None]
    mean = (difference * trusted[..., None]).sum((0, 1)) / max(float(trusted.sum()), 1e-6)
    trust = np.clip(spread / max(float(spread.max()), 1e-6) * 4, 0, 1)[..., None]
    small = trust * total / np.maximum(spread, 1e-6)[..., None] + (1 - trust) * mean
    full = cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return full if full.ndim == 3 else full[..., None]


def limited_move(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(P, 2) the moves taking a source frame's mouth shape (P, 2) towards the target shape, in their units, but no
    point further than MAX_STRETCH of the mouth's width: a closed mouth stretched wide open is a dark hole, worse
    than a mouth opening a little less."""
    move = target - source
    limit = MAX_STRETCH * float(width(source[None])[0])
    longest = float(np.linalg.norm(move, axis=1).max())
    return move * (limit / longest) if longest > limit else move


def _joined(parts: list[np.ndarray], gap: np.ndarray) -> np.ndarray:
    """The parts one after another along their first axis, `gap` between each two."""
    pieces = [parts[0]]
    for part in parts[1:]:
        pieces += [gap, part]
    return np.concatenate(pieces)


class FootageMouth:
    """The appearance stage of one shot: selection over the whole shot, then any frame on request.

    Sources are numbered over the shot's frames first (so a source number below the shot's length is that frame
    of the shot), then each added clip's, one unusable number between clips so that the last frame of one never
    plays on into the first of the next."""

    def __init__(self, shot: Footage, curves: MotionCurves, added: Sequence[Footage] = (), space: PlateSpace | None = None):
        """space: the float plate's colourspace (media.ocio), which added footage in another format is converted to."""
        self.plate, self.track, self.face, self.curves, self.space = shot.plate, shot.track, shot.face, curves, space
        self.sources = [shot, *added]
        self.starts = np.cumsum([0] + [len(f.track) + 1 for f in self.sources[:-1]])
        # Another take sits differently in its crop (pose, expression, framing): its shapes are compared as moves
        # from its own rest onto the shot's, or every frame of it would look far from every target.
        shapes = _joined([shot.shapes] + [f.shapes - rest_shape(f.shapes, f.usable) + curves.rest for f in added],
                         np.full((1, len(SHAPE_POINTS), 2), np.nan, np.float32))
        usable = _joined([f.usable for f in self.sources], np.zeros(1, bool))
        target_poses = shot.poses()
        poses = _joined([target_poses] + [f.poses() for f in added], np.zeros((1, 2)))
        cost = np.where(np.arange(len(usable)) >= len(shot.track), ADDED_COST, 0.0)
        self.selection = select_sources(curves.shapes, shot.usable, target_poses, shapes, usable, poses, cost)
        self.regions: dict[int, Region] = {}
        widest_source = float(np.nanmax(opening(shapes[usable]) - opening(curves.rest))) if usable.any() else 0.0
        widest_target = float(curves.opening[shot.usable].max()) if shot.usable.any() else 0.0
        self.coverage = 1.0 if widest_target <= 0 else min(1.0, max(widest_source, 0.0) / widest_target)
        self.added_share = float(np.mean(self.selection[shot.usable] >= len(shot.track))) if shot.usable.any() else 0.0

    def source(self, number: int) -> tuple[Footage, int]:
        """The footage a source number belongs to and its index in that footage's track."""
        n = int(np.searchsorted(self.starts, number, side="right")) - 1
        return self.sources[n], int(number - self.starts[n])

    def coverage_note(self) -> str | None:
        """What the report says when the footage never opens the mouth as wide as the dub asks."""
        if self.coverage >= COVERAGE_WARNING:
            return None
        return (f"the widest mouth opening in the footage is {self.coverage:.0%} of the dub's widest: wider mouths draw "
                f"out the middle of the widest (add footage of the actor opening wider with --appearance CLIP)")

    def has_sources(self, indices: range) -> bool:
        """Whether the source frames of target frames `indices` (track positions) are loaded."""
        return all(self.selection[i] < 0 or int(self.selection[i]) in self.regions for i in indices)

    def load_sources(self, indices: range, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Decode the source frames the target frames `indices` (track positions) use, keeping only their lower
        faces; frames no longer needed are dropped, so memory follows the chunk, not the shot."""
        needed = {int(self.selection[i]) for i in indices if self.selection[i] >= 0}
        self.regions = {j: r for j, r in self.regions.items() if j in needed}
        missing = sorted(needed - set(self.regions))
        for start, footage in zip(self.starts, self.sources):
            wanted = {int(footage.track.frames[j - start]): j for j in missing if 0 <= j - start < len(footage.track)}
            if not wanted:
                continue
            with open_plate(footage.plate, frames=(min(wanted), max(wanted)), only=wanted) as plate:
                for frame in plate:
                    if cancelled():
                        return
                    j = wanted[frame.number]
                    self.regions[j] = self._region(frame.image, j)

    def sources_end(self, start: int, stop: int, budget: int) -> int:
        """The first target frame (track position, from `start` up to `stop`) whose source frames, with those of
        the frames before it, would hold more than `budget` bytes of lower faces (counted as float32 RGB, the
        widest a plate decodes to); `stop` if all fit."""
        seen, total = set(), 0
        for i in range(start, stop):
            j = int(self.selection[i])
            if j >= 0 and j not in seen:
                seen.add(j)
                x0, y0, x1, y1 = self._region_box(j)
                total += (x1 - x0) * (y1 - y0) * 3 * 4
                if total > budget:
                    return i
        return stop

    def _region_box(self, j: int) -> tuple[int, int, int, int]:
        """Source `j`'s lower face with a margin, in its plate: x0, y0, x1, y1 (the far sides may pass the edge)."""
        footage, k = self.source(j)
        points = footage.face.landmarks[k][lower_face_points(), :2]
        margin = REGION_MARGIN * float(face_size(footage.face.landmarks[k]))
        x0, y0 = np.maximum(np.floor(points.min(0) - margin).astype(int), 0)
        x1, y1 = np.ceil(points.max(0) + margin).astype(int) + 1
        return int(x0), int(y0), int(x1), int(y1)

    def _region(self, image: np.ndarray, j: int) -> Region:
        x0, y0, x1, y1 = self._region_box(j)
        return Region(x0, y0, image[y0:y1, x0:x1, :3].copy())

    def target_points(self, index: int, source: int) -> np.ndarray:
        """(478, 2) where source `source`'s lower-face points land on target frame `index`, in its plate: the
        source's face moved with the skull onto the target's, its lips and jaw on the target shape."""
        to_crop = self.face.alignment(index, CROP_UNITS)
        to_plate = geometry.invert(to_crop)
        footage, k = self.source(source)
        source_crop = geometry.transform_points(footage.face.landmarks[k], footage.face.alignment(k, CROP_UNITS))
        move = limited_move(source_crop[list(SHAPE_POINTS)], self.curves.shapes[index])
        return geometry.transform_points(follow(source_crop, list(SHAPE_POINTS), move), to_plate)

    def warp(self, image: np.ndarray, index: int, mask: np.ndarray) -> Warped | None:
        """The selected source's lower face warped onto frame `index` (track position) of the plate and colour-matched
        to its light inside `mask` (plate-sized, feathered); None where the target's lower face leaves the plate."""
        source = int(self.selection[index])
        region = self.regions[source]
        target = self.target_points(index, source)
        lower = target[lower_face_points()]
        height, width = image.shape[:2]
        x0, y0 = np.maximum(np.floor(lower.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(lower.max(0)).astype(int) + 3, [width, height])
        if x1 <= x0 or y1 <= y0:
            return None
        footage, k = self.source(source)
        source_points, target_points = mouth_points(footage.face.landmarks[k][:, :2] - [region.x0, region.y0],
                                                    target - [x0, y0])
        feather = COVERAGE_FEATHER * float(face_size(self.face.landmarks[index]))
        pixels = region.pixels
        if pixels.dtype != image.dtype:  # added footage in another format: into the plate's encoding
            pixels = from_display(to_display(pixels), image[..., :3], self.space)
        warped, covered = warp_triangles(pixels, source_points, target_points, (y1 - y0, x1 - x0), feather)
        box_mask = mask[y0:y1, x0:x1] * covered
        original = image[y0:y1, x0:x1, :3].astype(np.float32)
        edge = (box_mask > EDGE_BAND[0]) & (box_mask < EDGE_BAND[1])
        if edge.sum() >= 16:  # the lighting of the source frame is not the target's: match at the edge
            warped += colour_correction(original - warped, edge, float(face_size(self.face.landmarks[index])))
        return Warped(int(x0), int(y0), warped, covered)

    def render(self, image: np.ndarray, index: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index` (track position) of the plate with the selected source mouth blended in through `mask`
        (plate-sized, feathered). Returns the image and the mask actually used."""
        used = np.zeros_like(mask)
        warped = self.warp(image, index, mask)
        if warped is None:
            return image, used
        box = warped.box
        used[box] = mask[box] * warped.covered
        result = image.copy()
        result[box] = blend(image[box], warped.pixels, used[box])
        return result, used
