"""Training input of the footage path's renderer: for every frame of a window, another frame of the same clip whose
mouth is near the frame's own, warped onto it as the render path warps the actor's frames (appearance/).

Self-supervised: the target is the frame itself, so the renderer learns what a warped real mouth gets wrong (the
lips' exact line, a mouth opened by stretching, an interior from another moment) and what it gets right (the
texture, which it should pass through). Sources are never within RETRIEVE_GAP frames of their target (a neighbour
is nearly the answer), are drawn from the RETRIEVED nearest so the renderer meets imperfect matches, and a share of
windows get none, so it learns to paint the lower face alone.
"""

from __future__ import annotations

import numpy as np

from ..appearance.footage import COVERAGE_FEATHER, limited_move
from ..appearance.select import shape_distance
from ..appearance.warp import follow, mouth_points, warp_triangles
from ..face.landmarks import face_size
from ..motion.shape import CROP_UNITS, SHAPE_POINTS, crop_points
from .data import PreparedClip

RETRIEVE_GAP = 10  # frames
RETRIEVED = 4
WITHHELD = 0.15  # share of windows without a warped frame


def nearest_frames(clip: PreparedClip) -> np.ndarray:
    """(N, RETRIEVED) for every frame the clip's frames with the nearest mouth shapes (-1: none; a frame without a
    face has none)."""
    shapes = crop_points(clip.landmarks, clip.crops.shape[1])
    usable = np.flatnonzero(clip.valid)
    nearest = np.full((len(clip), RETRIEVED), -1, np.int64)
    if len(usable) < 2:
        return nearest
    distance = shape_distance(shapes[usable], shapes[usable])
    distance[np.abs(usable[:, None] - usable[None]) < RETRIEVE_GAP] = np.inf
    k = min(RETRIEVED, len(usable))
    order = np.argsort(distance, axis=1)[:, :k]
    found = np.take_along_axis(distance, order, 1)
    nearest[usable[:, None], np.arange(k)] = np.where(np.isfinite(found), usable[order], -1)
    return nearest


def warped_frame(clip: PreparedClip, source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame `source` of the clip with its lips and jaw moved onto frame `target`'s shape (as far as the render path
    would move them), both in the clip's aligned crops. Returns the warped crop (S, S, 3) uint8 and where it holds
    pixels (S, S) float32, feathered as on the render path."""
    size = clip.crops.shape[1]
    points = clip.landmarks[source].astype(np.float64)
    shapes = crop_points(clip.landmarks[[source, target]], size)
    move = limited_move(shapes[0], shapes[1]) * (size / CROP_UNITS)
    moved = follow(points, list(SHAPE_POINTS), move)
    source_points, target_points = mouth_points(points, moved)
    feather = COVERAGE_FEATHER * float(face_size(clip.landmarks[target]))
    warped, covered = warp_triangles(clip.crops[source], source_points, target_points, (size, size), feather)
    return np.clip(np.round(warped), 0, 255).astype(np.uint8), covered


def clip_footage(clip: PreparedClip, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's warped frame, drawn once from its RETRIEVED nearest (seeded by the clip's name: the same draw
    in every run and on every process). Returns warped crops (N, S, S, 3) uint8 and where they hold pixels
    (N, S, S) uint8 (0 everywhere for a frame without one)."""
    nearest = nearest_frames(clip)
    rng = np.random.default_rng([seed, *clip.name.encode()])
    size = clip.crops.shape[1]
    warped = np.zeros((len(clip), size, size, 3), np.uint8)
    covered = np.zeros((len(clip), size, size), np.uint8)
    for target in range(len(clip)):
        found = nearest[target][nearest[target] >= 0]
        if len(found):
            image, coverage = warped_frame(clip, int(rng.choice(found)), target)
            warped[target], covered[target] = image, np.round(coverage * 255)
    return warped, covered


def footage_of(clips: list[PreparedClip], seed: int, folder, processes: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`clip_footage` of every clip, by name, kept in `folder` (an interrupted run resumes without warping again)."""
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {clip.name: folder / f"{clip.name}.npz" for clip in clips}
    missing = [clip for clip in clips if not paths[clip.name].exists()]
    if processes > 1 and len(missing) > 1:
        with ProcessPoolExecutor(processes) as pool:
            made = list(pool.map(clip_footage, missing, [seed] * len(missing)))
    else:
        made = [clip_footage(clip, seed) for clip in missing]
    for clip, (warped, covered) in zip(missing, made):
        tmp = paths[clip.name].with_suffix(".tmp.npz")
        np.savez(tmp, warped=warped, covered=covered)
        tmp.replace(paths[clip.name])
    found = {}
    for name, path in paths.items():
        with np.load(path) as z:
            found[name] = (z["warped"], z["covered"])
    return found
