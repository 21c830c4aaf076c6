"""Face analysis speed and smoothing quality on real clips from ../shared/data.

Speed: frames per second of the analyze op's tracking (decode + face mesh + full-range detector
where needed + smoothing) on a 1280x720 clip and a 1080x1920 clip, next to decoding alone, and the
preview pass (decode, draw, encode). Times are wall-clock on this machine's CPU, best of `--repeat`;
the ratios divide each by the decoding time of the same frames.

Smoothing: jitter (mean frame-to-frame landmark acceleration, % of the face height) of the raw and
the One Euro-smoothed landmarks, and lag (how far the smoothed face centre trails the raw one on the
fastest 10% of frames, % of the face height), on av/ clips with still and with moving heads; the
ratio is the smoothed jitter over the raw one.

Usage:
    python benchmarks/bench_analyze.py [--quick] [--frames N] [--repeat R] [--json analyze.json] [--data ../shared/data]
--quick: 25 frames per speed clip, one try, smoothing on the first 50 frames: a check that it runs.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine_facts, write_results  # noqa: E402

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


def speed(data: Path, frames: int, repeat: int) -> list[dict]:
    results = []
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
        results.append({
            "what": f"face analysis {Path(name).stem}", "clip": name, "width": info.width, "height": info.height, "frames": count,
            "faces_found": int(track.face(0).present.sum()) if track.faces else 0,
            "decode_frames_per_s": count / decode_s, "analyze_frames_per_s": count / analyze_s,
            "preview_frames_per_s": count / preview_s,
            "reference": "decoding the same frames alone", "ratio": analyze_s / decode_s, "preview_ratio": preview_s / decode_s,
        })
    return results


def speed_markdown(results: list[dict]) -> str:
    lines = ["| clip | size | frames | face on | decode frames/s | analyze frames/s | x decode | preview frames/s | x decode |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| `{r['clip']}` | {r['width']}x{r['height']} | {r['frames']} | {r['faces_found']} | "
                     f"{r['decode_frames_per_s']:.1f} | {r['analyze_frames_per_s']:.1f} | {r['ratio']:.2f} | "
                     f"{r['preview_frames_per_s']:.1f} | {r['preview_ratio']:.2f} |")
    return "\n".join(lines)


def smoothing(data: Path, frames: int | None) -> list[dict]:
    results = []
    for name in SMOOTHING_CLIPS:
        with open_plate(data / name) as plate:
            info = plate.info
        span = (info.first, info.last if frames is None else min(info.last, info.first + frames - 1))
        track = track_plate(data / name, frames=span, smooth=False)
        landmarks = track.face(0).landmarks
        smoothed = one_euro(landmarks, track.times)
        centre = landmarks[:, :, :2].mean(axis=1)
        step = np.linalg.norm(np.gradient(centre, axis=0), axis=1)
        fast = step >= np.nanquantile(step, 0.9)
        lag = np.linalg.norm(smoothed[fast, :, :2].mean(axis=1) - centre[fast], axis=1) / face_size(landmarks[fast])
        raw, smooth = jitter(landmarks), jitter(smoothed)
        results.append({"what": f"smoothing {Path(name).stem}", "clip": name, "frames": len(landmarks),
                        "jitter_raw_pct": raw, "jitter_smoothed_pct": smooth, "lag_pct": float(np.nanmean(lag) * 100),
                        "reference": "the raw landmarks", "jitter_ratio": smooth / raw})
    return results


def smoothing_markdown(results: list[dict]) -> str:
    lines = ["| clip | frames | jitter raw | jitter smoothed | x raw | lag |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| `{r['clip']}` | {r['frames']} | {r['jitter_raw_pct']:.3f} | {r['jitter_smoothed_pct']:.3f} | "
                     f"{r['jitter_ratio']:.2f} | {r['lag_pct']:.2f} |")
    raws, smooths = [r["jitter_raw_pct"] for r in results], [r["jitter_smoothed_pct"] for r in results]
    lines.append(f"| mean | | {np.mean(raws):.3f} | {np.mean(smooths):.3f} | {np.mean(smooths) / np.mean(raws):.2f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few frames, one try: a check that it runs")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--frames", type=int, help="frames per speed clip (default 150, quick 25)")
    parser.add_argument("--repeat", type=int, help="tries per speed measure, the best counts (default 2, quick 1)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"real media not found at {args.data}", file=sys.stderr)
        return 1
    facts = machine_facts()
    timed = speed(args.data, args.frames or (25 if args.quick else 150), args.repeat or (1 if args.quick else 2))
    smoothed = smoothing(args.data, 50 if args.quick else None)
    print(f"Face analysis on {describe(facts)}: frames/s, wall clock\n")
    print(speed_markdown(timed))
    print("\nSmoothing: jitter (mean landmark acceleration) and lag on the fastest 10% of frames, % of the face height\n")
    print(smoothing_markdown(smoothed))
    write_results(args.json, "analyze", args.quick, facts, timed + smoothed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
