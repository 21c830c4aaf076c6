"""The three ways `lipsync dub` makes a mouth, side by side on the dev clips (people no model trained on).

Each dev clip is dubbed with the next dev clip's speech, whose true mouth motion is known, with `--mouth footage`
(the actor's own frames moved by the motion stage: the default), with `--mouth rendered` (the same frames rendered
over by the StyleLipSync renderer) and with `--mouth generator` (the StyleLipSync generator from the audio alone). Per clip and mouth, measured on the written videos:
- detail: Laplacian energy inside the lips' box over the original plate's, frame by frame (1 = the footage's);
- detail_same_open: the same over the footage's frames whose mouth opens as far as the dub's (an open mouth shows
  teeth, a closed one does not: a dub that opens less than the actor did loses "detail" without any blur);
- follows: Pearson r of the output's mouth opening (face mesh run on the output) with the new speech's true
  opening (taken at the same times: the clips' frame rates differ), and with the actor's original opening (should be about 0: the old performance must not show);
- identity: distance of the dub's face to the original's, frame by frame (dlib's face-recognition descriptors, 16
  frames), beside identity_drift: the footage's own, each of those frames against the frame half the clip later
  (the dub should look no less like the actor than the actor does from one moment to another);
- light_p95: how far the dub's cheeks and chin stray from the plate's light (`light_mismatch`, 8-bit levels), the
  95th percentile over frames: a mismatched frame is what a viewer sees;
- flicker: mean absolute frame-to-frame change inside the lips' box over the original's (1 = as lively);
- detail_own, flicker_own: detail and flicker of the clip dubbed with its own speech, which opens the mouth when and as
  far as the footage did (other speech opens it otherwise: detail follows the opening, and speech that talks through
  the actor's pauses moves the mouth more than the footage did, without any flicker);
- speed: frames per second of the whole render (decode, analysis cached, mouth, encode).
Rendered without the invisible watermark: its texture would count as detail.
Writes docs/mouth_report.md and docs/mouth_report.png (mouths zoomed: real | generator | footage | rendered).

    python benchmarks/mouth_report.py [--manifest ../shared/data/manifest.csv] [--out docs]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_core.device import set_cpu_threads  # noqa: E402
from lipsync_core.dub.pipeline import dub  # noqa: E402
from lipsync_core.face.identity import load_identity_model  # noqa: E402
from lipsync_core.face.landmarks import LIPS, face_size, mouth_opening  # noqa: E402
from lipsync_core.face.tracker import track_plate  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.metrics import pearson  # noqa: E402

MOUTHS = ("generator", "footage", "rendered")
HD_CLIP = "av/jixinya_test_crop_M030_sad_3_001.mp4"  # 1920x1080: a face 400 px wide keeps its texture or not


def frames_of(path: Path) -> list[np.ndarray]:
    with open_plate(path) as plate:
        return [f.image for f in plate]


def lip_boxes(landmarks: np.ndarray, present: np.ndarray, shape) -> list[tuple[int, int, int, int] | None]:
    boxes = []
    for points, ok in zip(landmarks, present):
        if not ok:
            boxes.append(None)
            continue
        lips = points[list(LIPS), :2]
        lo, hi = lips.min(0), lips.max(0)
        pad = (hi - lo) * 0.25
        x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi + pad).astype(int), [shape[1], shape[0]])
        boxes.append((x0, y0, x1, y1))
    return boxes


def detail(image: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float((cv2.Laplacian(grey, cv2.CV_32F) ** 2).mean())


def same_opening_detail(dubbed: np.ndarray, dubbed_gap: np.ndarray, footage: np.ndarray, footage_gap: np.ndarray,
                        k: int = 5) -> float:
    """Median over frames of the dub's detail over the median detail of the k footage frames whose mouth opening is
    nearest the dub's (frames where the face mesh found no mouth on the dub are left out)."""
    ratios = []
    for value, gap in zip(dubbed, dubbed_gap):
        if np.isfinite(gap):
            nearest = np.argsort(np.abs(footage_gap - gap))[:k]
            ratios.append(value / max(float(np.median(footage[nearest])), 1e-6))
    return float(np.median(ratios)) if ratios else float("nan")


def identity_distances(original: list[np.ndarray], dubbed: list[np.ndarray], landmarks: np.ndarray, ok: list[int],
                       count: int = 16) -> tuple[float, float]:
    """(the dub's mean descriptor distance to the original frame, the footage's own to the frame half the clip
    later), over `count` frames spread over the first half of the usable ones; NaN without the identity extra."""
    model = load_identity_model()
    half = len(ok) // 2
    if model is None or half == 0:
        return float("nan"), float("nan")
    picked = [ok[k] for k in np.linspace(0, half - 1, min(count, half)).astype(int)]
    later = [ok[ok.index(i) + half] for i in picked]

    def describe(frames, at):
        return model.descriptors(np.stack([frames[i][..., :3] for i in at]), landmarks[at, :, :2])

    real = describe(original, picked)
    return (float(np.linalg.norm(describe(dubbed, picked) - real, axis=1).mean()),
            float(np.linalg.norm(describe(original, later) - real, axis=1).mean()))


def at_actor_times(speaker_gap: np.ndarray, speaker_times: np.ndarray, actor_times: np.ndarray) -> np.ndarray:
    """The speaker's opening at the actor's frame times, both from their first frame (the dub audio starts at the
    shot's first frame): the two clips' frame rates may differ, so frame k of one is not frame k of the other.
    NaN beyond the speaker's last frame."""
    since = actor_times - actor_times[0]
    speaker_since = speaker_times - speaker_times[0]
    return np.interp(since, speaker_since, speaker_gap, right=np.nan)


def light_mismatch(original: np.ndarray, dubbed: np.ndarray, mask: np.ndarray, box, face_height: float) -> float | None:
    """How far the dub's skin strays from the plate's light: the mean absolute difference of the two frames blurred
    to their light (sigma 4% of the face's height), 8-bit levels, over the mask's inside (> 0.5) less the lips' box
    grown by 8% of the face's height (the lips move, the cheeks and chin keep the plate's light). None when that
    region is empty."""
    region = mask > 0.5
    x0, y0, x1, y1 = box
    grow = int(0.08 * face_height)
    region[max(0, y0 - grow) : y1 + grow, max(0, x0 - grow) : x1 + grow] = False
    if region.sum() < 20:
        return None
    sigma = max(0.5, 0.04 * face_height)
    a = cv2.GaussianBlur(original[..., :3].astype(np.float32), (0, 0), sigma)
    b = cv2.GaussianBlur(dubbed[..., :3].astype(np.float32), (0, 0), sigma)
    return float(np.abs((b - a)[region].mean(axis=1)).mean())


def measure(original: list[np.ndarray], original_detail: np.ndarray, dubbed: list[np.ndarray], output: Path, boxes,
            actor_gap: np.ndarray, speaker_gap: np.ndarray, face) -> dict:
    """The measures of one dub: `dubbed`, the frames of the video `output`; `original_detail`, `lip_detail` of the
    original frames."""
    n = min(len(dubbed), len(original), len(speaker_gap))
    ok = [i for i in range(n) if boxes[i] is not None]
    dubbed_all = lip_detail(dubbed[:n], boxes)
    footage_detail, dubbed_detail = original_detail[ok], dubbed_all[ok]
    track = track_plate(output)
    dubbed_face = track.faces[0] if track.faces else None
    gap = mouth_opening(dubbed_face.landmarks[:n]) if dubbed_face is not None else np.full(n, np.nan)
    seen = np.where(dubbed_face.present[:n], gap, np.nan) if dubbed_face is not None else gap
    same_open = same_opening_detail(dubbed_detail, seen[ok], footage_detail, actor_gap[ok])
    light = [light_mismatch(original[i], dubbed[i], face.mask(i, original[i].shape[:2]), boxes[i],
                            float(face_size(face.landmarks[i]))) for i in ok]
    light = [v for v in light if v is not None]
    identity, drift = identity_distances(original, dubbed, face.landmarks, ok)
    return {"detail": detail_ratio(original_detail[:n], dubbed_all), "detail_same_open": same_open, "identity": identity, "identity_drift": drift, "light_p95": float(np.percentile(light, 95)) if light else float("nan"),
            "follows_new": pearson(gap, speaker_gap[:n]), "follows_original": pearson(gap, actor_gap[:n]),
            "flicker": flicker(original[:n], dubbed[:n], boxes)}


def lip_detail(frames: list[np.ndarray], boxes) -> np.ndarray:
    """(N,) each frame's detail in its lips' box; NaN where the lips were not found."""
    return np.array([detail(frame, box) if box is not None else np.nan for frame, box in zip(frames, boxes)])


def detail_ratio(footage: np.ndarray, dubbed: np.ndarray) -> float:
    """The median over the frames both hold of the dub's detail over the footage's (`lip_detail` of each)."""
    n = min(len(footage), len(dubbed))
    return float(np.nanmedian(dubbed[:n] / np.maximum(footage[:n], 1e-6)))


def flicker(original: list[np.ndarray], dubbed: list[np.ndarray], boxes) -> float:
    """Mean absolute frame-to-frame change inside the lips' box of the later frame (the rest of the frame is the
    plate's own in both), the dub's over the original's."""
    def change(frames, i):
        x0, y0, x1, y1 = boxes[i]
        return np.abs(frames[i][y0:y1, x0:x1].astype(np.float32) - frames[i - 1][y0:y1, x0:x1]).mean()

    n = min(len(original), len(dubbed))
    steps = [i for i in range(1, n) if boxes[i] is not None and boxes[i - 1] is not None]
    return float(np.mean([change(dubbed, i) for i in steps]) / max(np.mean([change(original, i) for i in steps]), 1e-6))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=ROOT.parent / "shared" / "data" / "manifest.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--also", action="append", default=None, metavar="FILE",
                        help="a plate (relative to the manifest) measured beside the dev clips, dubbed with the first dev "
                             "clip's speech, not in the medians (default: the media set's 1920x1080 clip)")
    args = parser.parse_args()
    also = [args.manifest.parent / f for f in (args.also or [HD_CLIP])]
    set_cpu_threads()
    with args.manifest.open(newline="") as f:
        rows_ = [r for r in csv.DictReader(f) if r["split"] == "dev" and r["kind"] == "av"]
    clips = [args.manifest.parent / r["file"] for r in rows_]
    paired = {args.manifest.parent / r["file"]: args.manifest.parent / r["paired_audio"] for r in rows_ if r["paired_audio"]}
    work = Path(tempfile.mkdtemp(prefix="mouth_report_"))
    rows, sheet, native = {}, [], []
    try:
        tracks = {}
        for clip in clips + also:
            plate = work / clip.stem / clip.name
            plate.parent.mkdir()
            shutil.copy(clip, plate)
            tracks[clip] = (plate, track_plate(plate), paired.get(clip, plate))
        pairs = [(clip, clips[(i + 1) % len(clips)]) for i, clip in enumerate(clips)] + [(clip, clips[0]) for clip in also]
        for clip, speaker in pairs:
            plate, track, own_speech = tracks[clip]
            speaker_plate, speaker_track, speech = tracks[speaker]
            face = track.faces[0]
            original = frames_of(plate)
            boxes = lip_boxes(face.landmarks, face.present & ~face.partial, original[0].shape)
            actor_gap = mouth_opening(face.landmarks)
            speaker_gap = at_actor_times(mouth_opening(speaker_track.faces[0].landmarks), speaker_track.times, track.times)
            original_detail = lip_detail(original, boxes)
            outputs = {}
            for mouth in MOUTHS:
                out = work / f"{clip.stem}_{mouth}.mp4"
                started = time.perf_counter()
                dub(plate, speech, out, mouth=mouth, watermark=False)  # the mouth, not the watermark's texture
                seconds = time.perf_counter() - started
                outputs[mouth] = frames_of(out)
                rows[(clip.stem, mouth)] = {**measure(original, original_detail, outputs[mouth], out, boxes, actor_gap, speaker_gap,
                                                      face), "fps": len(original) / seconds}
                own = work / f"{clip.stem}_{mouth}_own.mp4"
                dub(plate, own_speech, own, mouth=mouth, watermark=False)
                own_frames = frames_of(own)
                rows[(clip.stem, mouth)].update(detail_own=detail_ratio(original_detail, lip_detail(own_frames, boxes)),
                                                flicker_own=flicker(original, own_frames, boxes))
            middle = len(original) // 2
            box = boxes[middle]
            if box is not None:
                x0, y0, x1, y1 = box
                tiles = [original[middle]] + [outputs[m][middle] for m in MOUTHS]
                if clip in also:  # at the plate's own resolution: the texture a compositor sees at 100%
                    w, h = (x1 - x0) // 3, (y1 - y0) // 2
                    x0, y0, x1, y1 = max(x0 - w, 0), max(y0 - h, 0), x1 + w, y1 + h
                    native.append(np.hstack([t[y0:y1, x0:x1, :3] for t in tiles]))
                else:
                    sheet.append(np.hstack([cv2.resize(t[y0:y1, x0:x1, :3], (240, 150), interpolation=cv2.INTER_CUBIC)
                                            for t in tiles]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out / "mouth_report.png"), cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
    for n, picture in enumerate(native):
        cv2.imwrite(str(args.out / f"mouth_report_native{n or ''}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    dev = {clip.stem for clip in clips}
    keys = ("detail", "detail_same_open", "detail_own", "identity", "identity_drift", "light_p95", "follows_new", "follows_original", "flicker", "flicker_own", "fps")
    lines = ["# The mouth: generator, footage, rendered footage", "",
             "Each dev clip dubbed with the next dev clip's speech (`python benchmarks/mouth_report.py`). Medians over "
             f"the {len(clips)} clips, then per clip; last, plates measured beside them (dubbed with the first dev clip's "
             "speech, not in the medians). `mouth_report.png`: the lips' box of the middle frame, zoomed (real | generator "
             "| footage | rendered); `mouth_report_native.png`: the same for the first of the other plates, at its own resolution.", "",
             "| mouth | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for mouth in MOUTHS:
        values = [np.median([r[k] for (c, m), r in rows.items() if m == mouth and c in dev]) for k in keys]
        lines.append(f"| {mouth} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    lines += ["", "| clip | mouth | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for (clip, mouth), r in rows.items():
        lines.append(f"| {clip if clip in dev else clip + ' (not in the medians)'} | {mouth} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |")
    (args.out / "mouth_report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
