"""Temporal smoothing of landmark tracks (One Euro filter) and the jitter measure it is judged by."""

from __future__ import annotations

import numpy as np

from .landmarks import face_size

# Cut-offs in Hz; speeds are measured in face heights per second, so the same numbers suit a face of
# 80 px and one of 800 px. Tuned on the av/ clips (see benchmarks/bench_analyze.py for the jitter and
# lag they give).
MIN_CUTOFF = 1.0
BETA = 8.0
DERIVATIVE_CUTOFF = 1.0


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    landmarks: np.ndarray,
    times: np.ndarray,
    min_cutoff: float = MIN_CUTOFF,
    beta: float = BETA,
    derivative_cutoff: float = DERIVATIVE_CUTOFF,
) -> np.ndarray:
    """Smooth one face's landmarks (frames, points, 3), NaN where the face is missing.

    The One Euro filter lowers its cut-off when a point is still (jitter is removed) and raises it
    with speed (a fast head turn is followed without lag). A gap restarts the filter, so a face that
    reappears elsewhere is not dragged from where it vanished. The filter runs forward and backward
    and the two are averaged: analysis is offline, and the two passes' small lags cancel.
    """
    forward = _one_euro_pass(landmarks, times, min_cutoff, beta, derivative_cutoff)
    backward = _one_euro_pass(landmarks[::-1], -times[::-1], min_cutoff, beta, derivative_cutoff)[::-1]
    return ((forward + backward) * 0.5).astype(landmarks.dtype)


def _one_euro_pass(landmarks, times, min_cutoff, beta, derivative_cutoff) -> np.ndarray:
    out = np.full_like(landmarks, np.nan, dtype=np.float64)
    sizes = face_size(landmarks)
    previous = speed = None
    previous_time = 0.0
    for i, points in enumerate(landmarks):
        if not np.isfinite(points).all():
            previous = None
            continue
        if previous is None:
            out[i] = previous = points
            speed = np.zeros(len(points))
            previous_time = times[i]
            continue
        dt = max(float(times[i] - previous_time), 1e-6)
        # Speed of each point (not each coordinate), so x, y and z of a point share one cut-off.
        raw_speed = np.linalg.norm(points - previous, axis=-1) / dt / max(sizes[i], 1.0)
        speed = speed + _alpha(derivative_cutoff, dt) * (raw_speed - speed)
        alpha = _alpha(min_cutoff + beta * speed, dt)[:, None]
        out[i] = previous = previous + alpha * (points - previous)
        previous_time = times[i]
    return out


def jitter(landmarks: np.ndarray) -> float:
    """Mean frame-to-frame acceleration of the landmarks, |x[t+1] - 2 x[t] + x[t-1]| in the image
    plane, as a percentage of the face height; triplets with a missing frame are skipped."""
    xy = landmarks[..., :2].astype(np.float64)
    acceleration = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1).mean(axis=-1)
    relative = acceleration / face_size(landmarks[1:-1])
    return float(np.nanmean(relative) * 100.0) if np.isfinite(relative).any() else float("nan")
