"""Face analysis speed and smoothing quality on real clips from ../shared/data.

Speed: frames per second of the analyze op's tracking (decode + face mesh + full-range detector
where needed + smoothing) on a 1280x720 clip and a 1080x1920 clip, next to decoding alone, and the
preview pass (decode, draw, encode). Times are wall-clock on this machine's CPU, best of `--repeat`.

Smoothing: jitter (mean frame-to-frame landmark acceleration, % of the face height) of the raw and
the One Euro-smoothed landmarks, and lag (how far the smoothed face centre trails the raw one on the
fastest 10% of frames, % of the face height), on av/ clips with still and with moving heads.

Usage:
    python benchmarks/bench_analyze.py [--frames N] [--repeat R] [--data ../shared/data]
Run it on an otherwise idle machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_core.face.analyze import write_preview  # noqa: E402
from lipsync_core.face.landmarks import face_size  # noqa: E402
from lipsync_core.face.smoothing import jitter, one_euro  # noqa: E402
from lipsync_core.face.tracker import track_plate  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.shot import Shot  # noqa: E402

SPEED_CLIPS = [
    "assets/facebookrese_av_enhancement_test_videos_noisy_restaurant.mp4",  # 1280x720, one face
    "assets/KwaiVGI_assets_examples_source_s18.mp4",  # 1280x720, one face, close
    "assets/bytedance_assets_demo1_video.mp4",  # 1080x1920 HEVC, small face
]
SMOOTHING_CLIPS = [
    "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg",  # studio, still head
    "av/OpenTalker_examples_face_1.mp4",
    "av/Hangz-nju-cu_misc_unz_Pose_Source_Pose_Source_00473.mp4",
    "av/AP0827_test_set_sample1.mp4",  # head turns of +-22 degrees
]


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def speed(data: Path, frames: int, repeat: int) -> None:
    print(f"{'clip':<58} {'size':>9} {'decode':>8} {'analyze':>8} {'preview':>8}   (frames/s, {frames} frames)")
    for name in SPEED_CLIPS:
        path = data / name
        with open_plate(path) as plate:
            info = plate.info
        span = (info.first, min(info.last, info.first + frames - 1))
        count = span[1] - span[0] + 1

        def decode():
            with open_plate(path, frames=span) as plate:
                for _ in plate:
                    pass

        decode_s = best_of(repeat, decode)
        track = None

        def analyze():
            nonlocal track
            track = track_plate(path, frames=span)

        analyze_s = best_of(repeat, analyze)
        with tempfile.TemporaryDirectory() as folder:
            shot = Shot.for_plate(Path(folder) / path.name)
            preview_s = best_of(1, lambda: write_preview(path, track, shot, 0, Path(folder) / "p.mp4", info.fps))
        found = int(track.face(0).present.sum()) if track.faces else 0
        print(
            f"{name:<58} {info.width}x{info.height:<4} {count / decode_s:8.1f} {count / analyze_s:8.1f} "
            f"{count / preview_s:8.1f}   face on {found}/{count}"
        )


def smoothing(data: Path) -> None:
    print(f"\n{'clip':<58} {'jitter raw':>10} {'smoothed':>9} {'lag':>6}   (% of face height)")
    raws, smooths = [], []
    for name in SMOOTHING_CLIPS:
        track = track_plate(data / name, smooth=False)
        landmarks = track.face(0).landmarks
        smoothed = one_euro(landmarks, track.times)
        centre = landmarks[:, :, :2].mean(axis=1)
        step = np.linalg.norm(np.gradient(centre, axis=0), axis=1)
        fast = step >= np.nanquantile(step, 0.9)
        lag = np.linalg.norm(smoothed[fast, :, :2].mean(axis=1) - centre[fast], axis=1) / face_size(landmarks[fast])
        raw, smooth = jitter(landmarks), jitter(smoothed)
        raws.append(raw)
        smooths.append(smooth)
        print(f"{name:<58} {raw:10.3f} {smooth:9.3f} {np.nanmean(lag) * 100:6.2f}")
    print(f"{'mean':<58} {np.mean(raws):10.3f} {np.mean(smooths):9.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--frames", type=int, default=150, help="frames per speed clip (default 150)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not (args.data / "manifest.csv").is_file():
        print(f"real media not found at {args.data}", file=sys.stderr)
        return 1
    speed(args.data, args.frames, args.repeat)
    smoothing(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
