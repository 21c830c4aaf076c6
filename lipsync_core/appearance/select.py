"""Which of the actor's own frames lends its mouth to each frame of the dub.

For every target frame, the CANDIDATES frames of the shot whose mouth shape is nearest the target shape (from the
motion stage) and whose head pose is near the target frame's, and the next frame of each of the previous target
frame's candidates (without them, the frame after the one shown is seldom among the nearest few, and the path holds
one frame still for half a second and more where it could play on); then one path through them over the whole shot by
dynamic programming: playing on to the next source frame costs nothing, holding one costs a little, jumping costs
more, so the mouth keeps the footage's own frame-to-frame life and does not flicker between sources. The target
frame's own mouth is a candidate like any other: it wins only where its shape is the one the dub asks for.
"""

from __future__ import annotations

import numpy as np

from ..motion.shape import LIP_INDEX, opening

CANDIDATES = 8
POSE_WEIGHT = 0.15  # crop units per degree of head rotation between source and target
# Per crop unit of mouth opening between source and target, on top of the lips' RMS distance, which spreads an
# opening the source lacks over all 40 lip points. The opening is what a viewer reads, and what the warp can least
# make up (it moves a lip only a little from its source): a closed source for an open target shows a closed mouth.
OPENING_WEIGHT = 0.1
# Crop units: the same source frame twice. A held frame is a still mouth that only the warp moves; at 0.4, 62% of the
# dev dubs' speaking frames were in holds of 3 frames or more (up to 2.4 s), at 0.8 8%, with cuts to another part of
# the footage on 20% of speaking frames instead of 14% (the rest play on).
HOLD_COST = 0.8
JUMP_COST = 1.5  # crop units: a cut to another part of the footage
BLOCK = 512  # target frames costed at once


def shape_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS distance of the lip points, (N, P, 2) x (M, P, 2) -> (N, M) crop units."""
    x = a[:, LIP_INDEX].reshape(len(a), -1).astype(np.float64)
    y = b[:, LIP_INDEX].reshape(len(b), -1).astype(np.float64)
    squared = (x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2 * x @ y.T
    return np.sqrt(np.maximum(squared, 0) / len(LIP_INDEX))


def select_sources(target: np.ndarray, target_ok: np.ndarray, target_poses: np.ndarray, source: np.ndarray,
                   source_ok: np.ndarray, source_poses: np.ndarray, source_cost: np.ndarray | None = None) -> np.ndarray:
    """target: (N, P, 2) target shapes; source: (M, P, 2) the footage's shapes (consecutive entries are
    consecutive frames); *_poses: head rotation in degrees, (N, A) and (M, A); *_ok: usable frames; source_cost:
    (M,) crop units added to a source's cost (footage from another clip). Returns (N,) the source index of every
    target frame (-1 where the target is not usable)."""
    usable = np.flatnonzero(source_ok)
    chosen = np.full(len(target), -1, np.int64)
    frames = np.flatnonzero(target_ok)
    if not len(usable) or not len(frames):
        return chosen
    k = min(CANDIDATES, len(usable))
    position = np.full(len(source), -1, np.int64)  # a source frame's column in the cost
    position[usable] = np.arange(len(usable))
    sources = np.full((len(frames), 2 * k), -1, np.int64)  # the nearest k, then the best k of the frames playing on
    unary = np.full((len(frames), 2 * k), np.inf)
    # In blocks of target frames: memory stays flat in the shot's length.
    for lo in range(0, len(frames), BLOCK):
        block = frames[lo : lo + BLOCK]
        cost = shape_distance(target[block], source[usable])
        cost += OPENING_WEIGHT * np.abs(opening(target[block])[:, None] - opening(source[usable])[None])
        for axis in range(target_poses.shape[1]):
            cost += POSE_WEIGHT * np.abs(target_poses[block, axis][:, None] - source_poses[usable, axis][None])
        if source_cost is not None:
            cost += source_cost[usable][None]
        nearest = np.argpartition(cost, k - 1, axis=1)[:, :k]
        for b, t in enumerate(range(lo, lo + len(block))):
            pool = usable[nearest[b]]
            if t and frames[t] == frames[t - 1] + 1:
                after = sources[t - 1][sources[t - 1] >= 0] + 1
                after = after[after < len(source)]
                after = np.setdiff1d(after[position[after] >= 0], pool)
                pool = np.concatenate([pool, after[np.argsort(cost[b, position[after]], kind="stable")[:k]]])
            sources[t, : len(pool)] = pool
            unary[t, : len(pool)] = cost[b, position[pool]]
    # Viterbi over the candidates; a gap in the usable target frames starts afresh.
    total = unary[0].copy()
    back = np.zeros(sources.shape, np.int64)
    for t in range(1, len(frames)):
        if frames[t] != frames[t - 1] + 1:
            back[t] = np.argmin(total)
            total = unary[t] + total.min()
            continue
        step = sources[t][None, :] - sources[t - 1][:, None]  # (previous, current)
        transition = np.where(step == 1, 0.0, np.where(step == 0, HOLD_COST, JUMP_COST))
        paths = total[:, None] + transition
        back[t] = np.argmin(paths, axis=0)
        total = paths[back[t], np.arange(sources.shape[1])] + unary[t]
    pick = int(np.argmin(total))
    for t in range(len(frames) - 1, -1, -1):
        chosen[frames[t]] = sources[t, pick]
        pick = back[t, pick]
    return chosen
