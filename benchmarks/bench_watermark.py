"""How well the dub's invisible watermark survives, and what it costs, on real dubs of small and large faces.

For each plate (PLATES: a small face in a wide 720p shot, GRID's 360x288 studio face, a large 1080p MEAD face) the
first `--frames` frames are dubbed with the default mouth (the actor's own frames moved by the motion stage) and the
watermark is put into each dubbed frame exactly as `lipsync dub` does (its strength follows the mouth box's height,
`watermark.strength`). Then:
    PSNR   of the marked frame against the unmarked dub, inside the mouth box (the bounding box of the blend mask):
           what the mark costs where it is;
    bits   the share of the 32 payload bits decoded right, from one frame alone (mean over frames) and voted over
           all the frames (what `lipsync verify` does), after:
             none        the frames as rendered (a lossless output: EXR, PNG)
             h264        written by the dub's own .mp4 writer (H.264, its default quality) and decoded
             half        scaled to 50% (area filter)
             half+h264   scaled to 50%, then H.264 at the same quality
           and the same decoder on the unmarked dub (chance: about 0.5; `found` must be False).
Usage: python benchmarks/bench_watermark.py [--frames 25] [--strength S] [--json wm.json] [--data ../shared/data]
    --strength S marks every mouth with strength S (1: the full step) instead of by its size: how far it can go down.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine_facts, write_results  # noqa: E402

from lipsync_core.dub.pipeline import Renderer  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.media.writers import open_writer  # noqa: E402
from lipsync_core.provenance import watermark  # noqa: E402

PLATES = {
    "small face, 720p wide": "assets/facebookrese_av_enhancement_test_videos_noisy_restaurant.mp4",
    "GRID face, 360x288": "av/rizkiarm_evaluation_samples_GRID_brbk7n.mpg",
    "large face, 1080p": "av/jixinya_test_crop_M030_sad_3_001.mp4",
}
AUDIO = ROOT / "resources" / "samples" / "dub_speech.wav"
BITS = watermark.payload("c0ffee")


def dubbed_frames(plate: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, mask) of the first `count` dubbed frames."""
    renderer = Renderer(plate, AUDIO)
    frames = renderer.frames(renderer.first, min(renderer.last, renderer.first + count - 1))
    return [(f.image, f.mask) for f in frames if f.skipped is None]


def h264(images: list[np.ndarray], folder: Path) -> list[np.ndarray]:
    path = folder / "roundtrip.mp4"
    h, w = images[0].shape[:2]
    with open_writer(path, fps=25, width=w, height=h) as out:
        for image in images:
            out.write(image)
    with open_plate(path) as plate:
        return [frame.image for frame in plate]


def half(images: list[np.ndarray]) -> list[np.ndarray]:
    h, w = images[0].shape[:2]
    return [cv2.resize(image, (w // 4 * 2, h // 4 * 2), interpolation=cv2.INTER_AREA) for image in images]


def accuracy(images: list[np.ndarray]) -> dict:
    voted, alone = watermark.Decoder(), []
    for image in images:
        one = watermark.Decoder()
        one.add(image)
        alone.append(float((one.reading().bits == BITS).mean()))
        voted.add(image)
    reading = voted.reading()
    return {"per_frame": round(float(np.mean(alone)), 3), "voted": round(float((reading.bits == BITS).mean()), 3),
            "found": bool(reading.found)}


def measure(name: str, clip: Path, count: int, folder: Path) -> dict:
    plate = folder / f"plate{clip.suffix}"
    shutil.copy(clip, plate)  # the face-track cache lands beside the plate, not in the data folder
    pairs = dubbed_frames(plate, count)
    dubbed = [image for image, _ in pairs]
    marked = [watermark.embed(image, mask, BITS) for image, mask in pairs]
    errors, heights = [], []
    for (image, mask), mark in zip(pairs, marked):
        ys, xs = np.nonzero(mask)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        errors.append(np.mean((mark[box].astype(np.float64) - image[box]) ** 2))
        heights.append(ys.max() - ys.min() + 1)
    result = {"plate": name, "frames": len(pairs), "size": f"{dubbed[0].shape[1]}x{dubbed[0].shape[0]}",
              "mouth_box_height_px": int(np.median(heights)),
              "strength": round(watermark.strength(int(np.median(heights))), 2),
              "psnr_mouth_box_db": round(float(10 * np.log10(255.0**2 / np.mean(errors))), 1)}
    for label, images in (("none", marked), ("h264", h264(marked, folder)), ("half", half(marked)),
                          ("half+h264", h264(half(marked), folder)), ("unmarked h264", h264(dubbed, folder))):
        result[label] = accuracy(images)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--strength", type=float, help="one strength for every mouth (default: by its size)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if args.strength is not None:
        watermark.strength = lambda box_height: args.strength
    facts = machine_facts()
    print(describe(facts))
    results = []
    for name, clip in PLATES.items():
        with tempfile.TemporaryDirectory() as folder:
            result = measure(name, args.data / clip, args.frames, Path(folder))
        print(result, flush=True)
        results.append(result)
    write_results(args.json, "watermark", False, facts, results)


if __name__ == "__main__":
    main()
