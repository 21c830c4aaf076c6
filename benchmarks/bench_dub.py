"""End-to-end speed of `lipsync dub` on a 1280x720 and a 1920x1080 clip, stage by stage, and its peak memory.

Speed: for each plate and each way of making the mouth (`--mouth footage`, the default: the actor's own frames
moved by the motion stage; `--mouth rendered`: the same frames rendered over by the bundled renderer;
`--mouth generator`: the StyleLipSync model), the first `--frames` frames are dubbed
to an .mp4 twice in one process, and
between the two a pass only decodes the plate and encodes it again with the same writer (the
reference: the floor any render pays):
    cold   what a user's first `lipsync dub` of a shot costs: face analysis included, and the
           one-off warm-ups (librosa's first mel, torch's first convolutions) inside "features" and
           "generate";
    warm   the same render again: the cached track is reused and everything is warmed up.
The plates are real clips of ../shared/data with one face, copied as they are (PLATES): 720p is
av/yiranran_Data_31.mp4 (25 fps), 1080p is av/jixinya_test_crop_M030_sad_3_001.mp4 (MEAD, 30 fps,
112 frames: --frames is capped there).
Stages, from the renderer's own clocks (DubReport.timings): decode (plate frames), analyze (face
tracking of the shot, with its own decoding), features (log-mel, aligned crops, crop masks; the motion stage),
generate (the model: codes + decoding), composite (masks in the plate, warp back, blend; for the footage
mouths: selecting, warping and blending the actor's frames, whose decoding is under decode; the renderer's inputs
are under features), encode
(the frames are marked, converted, encoded and muxed or written on a thread of their own while the next are rendered:
this is the time the render waits for that thread). The ratios divide the whole render, and each stage, by the
decode+encode time of the same frames.

Memory (--memory): peak RSS of a full `lipsync dub` process for a 10 s and a 60 s plate (the GRID
sample looped), to show it does not grow with the length of the shot; --memory-4k: the same for a 2 s and a
6 s 3840x2160 plate (the 720p clip scaled up) with the default mouth.

The model is the bundled one when it exists, else a random-weight model of the same config (same
architecture and size: the same speed). Usage:
    python benchmarks/bench_dub.py [--quick] [--frames 100] [--memory] [--memory-4k] [--json dub.json] [--data ../shared/data]
--quick: 25 frames per plate, a check that it runs. Run it on an otherwise idle machine for numbers
to quote; LD_PRELOAD tcmalloc as `make` does; OMP_NUM_THREADS sets torch's threads (default: one per core).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine_facts, run_python, write_results  # noqa: E402

from lipsync_core.dub.outputs import DubOutput  # noqa: E402
from lipsync_core.dub.pipeline import DEFAULT_MODEL, STAGES, dub  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.media.writers import open_writer  # noqa: E402
from lipsync_core.models.checkpoint import save_checkpoint  # noqa: E402
from lipsync_core.models.config import get_config  # noqa: E402
from lipsync_core.models.stylelipsync import StyleLipSync  # noqa: E402
from lipsync_core.models.syncnet import SyncNet  # noqa: E402

PLATES = {  # real footage with one face, in ../shared/data
    "720p": "av/yiranran_Data_31.mp4",  # 1280x720, 25 fps, 24 s
    "1080p": "av/jixinya_test_crop_M030_sad_3_001.mp4",  # 1920x1080, 30 fps, 3.7 s
}
SAMPLES = ROOT / "resources" / "samples"


def model_file(folder: Path, config_name: str = "cpu") -> tuple[Path, str]:
    """A model file with a generator and a SyncNet: the bundled one, else random weights of the config."""
    if config_name == "cpu" and DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, f"bundled {DEFAULT_MODEL.name}"
    torch.manual_seed(0)
    config = get_config(config_name)
    path = folder / f"random_{config_name}.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(config), "syncnet": SyncNet(config)}, config)
    return path, f"random weights, '{config_name}' config (same speed)"


def decode_encode(plate: Path, frames: tuple[int, int], audio: Path, out: Path) -> None:
    """Read the frames and write them with the dub's own writer, nothing else."""
    with open_plate(plate, frames=frames) as source:
        with DubOutput(out, source.info, audio, 0.0, [plate]) as writer:
            for frame in source:
                writer.write(frame.number, frame.image, np.zeros(frame.image.shape[:2], np.float32))


def clocked(work) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result). CPU time counts every thread, so it is
    the figure that survives a machine shared with other work."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result




def speed(name: str, data: Path, clip: str, count: int, model: Path, folder: Path, mouth: str) -> list[dict]:
    """One result per render (cold, warm) of the first `count` frames of the clip, the mouth made by `mouth`."""
    # The dub caches the face track beside its plate: a copy keeps the data folder clean and the
    # first render truly cold.
    plate = folder / mouth / f"{name}{Path(clip).suffix}"
    plate.parent.mkdir(exist_ok=True)
    shutil.copy(data / clip, plate)
    with open_plate(plate) as source:
        info = source.info
    count = min(count, info.frame_count)
    frames = (info.first, info.first + count - 1)
    audio = SAMPLES / "dub_speech.wav"
    renders = {}
    for run in ("cold", "reference", "warm"):
        if run == "reference":  # after the cold render, so codecs and imports are warm for it too
            reference, reference_cpu, _ = clocked(lambda: decode_encode(plate, frames, audio, folder / f"{name}_copy.mp4"))
            continue
        wall, cpu, report = clocked(lambda: dub(plate, audio, folder / f"{name}_{mouth}_{run}.mp4", frames=frames, mouth=mouth,
                                                model=model if mouth == "generator" else None, device="cpu"))
        renders[run] = (wall, cpu, report.timings)

    results = []
    for run, (wall, cpu, timings) in renders.items():
        stages = {}
        for stage in STAGES:
            seconds = timings[stage]
            # A stage that did not run (analysis of a cached track) has no speed and no ratio.
            stages[stage] = {"seconds": seconds, "share": seconds / wall} | (
                {"frames_per_s": count / seconds, "ratio": seconds / reference} if seconds > 0 else {})
        results.append({
            "what": f"dub {name} ({info.width}x{info.height}), --mouth {mouth}, {run}", "plate": f"{name}, --mouth {mouth}",
            "mouth": mouth, "clip": clip,
            "width": info.width, "height": info.height, "fps": info.fps, "frames": count, "run": run,
            "seconds": wall, "cpu_s": cpu, "frames_per_s": count / wall,
            "reference": "decode+encode of the same frames with the dub's writer", "reference_s": reference,
            "reference_cpu_s": reference_cpu, "reference_frames_per_s": count / reference,
            "ratio": wall / reference, "cpu_ratio": cpu / reference_cpu,
            "stages": stages, "other_s": wall - sum(timings.values()),
        })
    return results


def speed_markdown(results: list[dict]) -> str:
    """One table per plate: stages down, the cold and warm renders across."""
    lines = []
    for name in dict.fromkeys(r["plate"] for r in results):
        runs = [r for r in results if r["plate"] == name]
        first = runs[0]
        lines += [
            f"**{name}**: `{first['clip']}`, {first['width']}x{first['height']}, {first['fps']:.4g} fps, {first['frames']} frames; "
            f"reference (decode+encode alone): {first['reference_s']:.2f} s = {first['reference_frames_per_s']:.1f} frames/s "
            f"(CPU {first['reference_cpu_s']:.2f} s)",
            "",
            "| stage | " + " | ".join(f"{r['run']} s | {r['run']} frames/s | {r['run']} share | {r['run']} x reference" for r in runs) + " |",
            "| --- |" + " ---: |" * (4 * len(runs)),
        ]
        for stage in STAGES:
            cells = []
            for r in runs:
                s = r["stages"][stage]
                cells += [f"{s['seconds']:.2f}", f"{s['frames_per_s']:.1f}" if "frames_per_s" in s else "-", f"{s['share']:.0%}",
                          f"{s['ratio']:.2f}" if "ratio" in s else "-"]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        lines.append("| other | " + " | ".join(f"{r['other_s']:.2f} | | {r['other_s'] / r['seconds']:.0%} |" for r in runs) + " |")
        lines.append("| **total** | " + " | ".join(f"{r['seconds']:.2f} | {r['frames_per_s']:.1f} | | **{r['ratio']:.2f}**" for r in runs) + " |")
        lines.append("| CPU time | " + " | ".join(f"{r['cpu_s']:.2f} | {r['frames'] / r['cpu_s']:.1f} | | {r['cpu_ratio']:.2f}" for r in runs) + " |")
        lines.append("")
    return "\n".join(lines)


def memory(model: Path, folder: Path) -> list[dict]:
    """Peak RSS of a whole `lipsync dub` process for a 10 s and a 60 s plate (the GRID sample looped)."""
    with open_plate(SAMPLES / "grid_bbaf2n.mp4") as sample:
        images = [f.image for f in sample]
        info = sample.info
    plates = []
    for seconds in (10, 60):
        plate = folder / f"plate_{seconds}s.mp4"
        with open_writer(plate, fps=info.fps, width=info.width, height=info.height) as out:
            for i in range(int(seconds * info.fps)):
                # Back and forth, so the loop has no jump that would lose the face for a frame.
                cycle = i % (2 * len(images) - 2)
                out.write(images[cycle if cycle < len(images) else 2 * len(images) - 2 - cycle])
        plates.append((plate, seconds))
    return peak_memory(plates, ["--model", str(model)], folder)


def memory_4k(data: Path, folder: Path) -> list[dict]:
    """Peak RSS of a whole `lipsync dub` process (the default mouth, .mp4) for a 2 s and a 6 s 3840x2160 plate: the
    720p clip scaled up (real footage, one face)."""
    plates = []
    for seconds in (2, 6):
        plate = folder / f"plate_4k_{seconds}s.mp4"
        with open_plate(data / PLATES["720p"], frames=(0, int(seconds * 25) - 1)) as source, \
                open_writer(plate, fps=source.info.fps, width=3840, height=2160, preset="ultrafast") as out:
            for frame in source:
                out.write(cv2.resize(frame.image, (3840, 2160), interpolation=cv2.INTER_CUBIC))
        plates.append((plate, seconds))
    return peak_memory(plates, [], folder)


def peak_memory(plates: list[tuple[Path, int]], options: list[str], folder: Path) -> list[dict]:
    """Peak RSS of `lipsync dub` on each plate, each compared with the first (memory must not grow with the shot)."""
    results = []
    for plate, seconds in plates:
        with open_plate(plate) as opened:
            info = opened.info
        run = run_python(["-m", "lipsync_core.cli", "dub", str(plate), str(SAMPLES / "dub_speech.wav"),
                          "-o", str(folder / f"out_{plate.stem}.mp4"), "--device", "cpu", *options], cwd=ROOT)
        if run.returncode != 0:
            raise SystemExit(run.stderr[-2000:])
        result = {"what": f"dub memory, {seconds} s plate ({info.width}x{info.height}, {info.frame_count} frames)",
                  "plate_s": seconds, "size": f"{info.width}x{info.height}", "frames": info.frame_count,
                  "peak_rss_mib": run.peak_rss_mib, "seconds": run.wall_s}
        if results:
            first = results[0]
            result |= {"reference": f"the {first['plate_s']} s plate", "mem_ratio": run.peak_rss_mib / first["peak_rss_mib"]}
        results.append(result)
    return results


def memory_markdown(results: list[dict], what: str) -> str:
    lines = [f"Peak memory of a whole `lipsync dub` process, {what}:", "",
             "| plate | size | frames | peak RSS (MiB) | x the shortest plate | wall s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        ratio = f"{r['mem_ratio']:.2f}" if "mem_ratio" in r else ""
        lines.append(f"| {r['plate_s']} s | {r['size']} | {r['frames']} | {r['peak_rss_mib']:.0f} | {ratio} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="25 frames per plate: a check that it runs")
    parser.add_argument("--frames", type=int, help="frames per plate (default 100, quick 25)")
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS for a 10 s and a 60 s plate")
    parser.add_argument("--memory-4k", action="store_true", help="also measure peak RSS for a 2 s and a 6 s 4K plate")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"real media not found at {args.data}", file=sys.stderr)
        return 1
    count = args.frames or (25 if args.quick else 100)
    facts = machine_facts()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, model_note = model_file(folder)
        results = []
        for name, clip in PLATES.items():
            for mouth in ("footage", "rendered", "generator"):
                print(f"[dub] {name}, --mouth {mouth}: {count} frames of {clip}", file=sys.stderr, flush=True)
                results += speed(name, args.data, clip, count, model, folder, mouth)
        print(f"`lipsync dub` on {describe(facts)}; model {model_note}\n")
        print(speed_markdown(results))
        if args.memory:
            measured = memory(model, folder)
            print(memory_markdown(measured, "the GRID sample looped, --mouth generator"))
            results += measured
        if args.memory_4k:
            measured = memory_4k(args.data, folder)
            print(memory_markdown(measured, "a 720p clip scaled up to 4K, the default mouth"))
            results += measured
    write_results(args.json, "dub", args.quick, facts, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
