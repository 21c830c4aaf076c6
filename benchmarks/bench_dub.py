"""End-to-end speed of `lipsync dub` on a 1280x720 25 fps clip, stage by stage, and its peak memory.

Speed: the first `--frames` frames of av/yiranran_Data_31.mp4 are dubbed to an .mp4 twice in one
process, and between the two a pass only decodes the plate and encodes it again with the same
writer (the floor any render pays):
    cold   what a user's first `lipsync dub` of a shot costs: face analysis included, and the
           one-off warm-ups (librosa's first mel, torch's first convolutions) inside "features" and
           "generate";
    warm   the same render again: the cached track is reused and everything is warmed up.
Stages, from the renderer's own clocks (DubReport.timings): decode (plate frames), analyze (face
tracking of the shot, with its own decoding), features (log-mel, aligned crops, crop masks),
generate (the model: codes + decoding), composite (masks in the plate, warp back, blend), encode
(conversion + H.264 + muxing the dub). The ratio is the whole render over decode+encode alone.

Memory (--memory): peak RSS of a full `lipsync dub` process for a 10 s and a 60 s plate (the GRID
sample looped), to show it does not grow with the length of the shot.

The model is the bundled one when it exists, else a random-weight model of the same config (same
architecture and size: the same speed). Usage:
    python benchmarks/bench_dub.py [--frames 100] [--memory] [--data ../shared/data]
Run it on an otherwise idle machine for numbers to quote; LD_PRELOAD tcmalloc as `make` does;
OMP_NUM_THREADS sets torch's threads (default: one per core).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_core.dub.outputs import DubOutput  # noqa: E402
from lipsync_core.dub.pipeline import DEFAULT_MODEL, STAGES, dub  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.media.writers import open_writer  # noqa: E402
from lipsync_core.models.checkpoint import save_checkpoint  # noqa: E402
from lipsync_core.models.config import get_config  # noqa: E402
from lipsync_core.models.stylelipsync import StyleLipSync  # noqa: E402

CLIP = "av/yiranran_Data_31.mp4"  # 1280x720, 25 fps, one face
SAMPLES = ROOT / "resources" / "samples"


def model_file(folder: Path) -> tuple[Path, str]:
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, f"bundled {DEFAULT_MODEL.name}"
    torch.manual_seed(0)
    config = get_config("cpu")
    path = folder / "random_cpu.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(config)}, config)
    return path, "random weights, 'cpu' config (the bundled model is not there yet; same speed)"


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


def speed(data: Path, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plate = tmp / "plate.mp4"
        shutil.copy(data / CLIP, plate)
        audio = SAMPLES / "dub_speech.wav"
        model, model_note = model_file(tmp)
        frames = (0, count - 1)
        with open_plate(plate, frames=frames) as source:
            info = source.info
        print(f"plate {CLIP}: {info.width}x{info.height}, {info.fps:g} fps, frames {frames[0]}-{frames[1]}")
        print(f"model {model_note}; torch threads {torch.get_num_threads()}")

        runs, cpu = {}, {}
        for name in ("cold", "floor", "warm"):
            if name == "floor":  # after the cold render, so codecs and imports are warm for it too
                floor, floor_cpu, _ = clocked(lambda: decode_encode(plate, frames, audio, tmp / "copy.mp4"))
                continue
            wall, cpu[name], report = clocked(
                lambda: dub(plate, audio, tmp / f"{name}.mp4", frames=frames, model=model, device="cpu")
            )
            runs[name] = (wall, report.timings)

        print(f"\ndecode+encode alone: {floor:.2f} s = {count / floor:.1f} fps (CPU {floor_cpu:.2f} s)\n")
        print(f"{'stage':<10}" + "".join(f"{name + ' s':>10}{name + ' fps':>10}{'share':>7}" for name in runs))
        for stage in STAGES:
            row = f"{stage:<10}"
            for total, timings in runs.values():
                seconds = timings[stage]
                fps = f"{count / seconds:.1f}" if seconds > 0 else "-"
                row += f"{seconds:>10.2f}{fps:>10}{seconds / total:>7.0%}"
            print(row)
        row = f"{'other':<10}"
        for total, timings in runs.values():
            other = total - sum(timings.values())
            row += f"{other:>10.2f}{'':>10}{other / total:>7.0%}"
        print(row)
        row = f"{'total':<10}"
        for total, _ in runs.values():
            row += f"{total:>10.2f}{count / total:>10.1f}{'':>7}"
        print(row)
        print(f"{'CPU s':<10}" + "".join(f"{cpu[name]:>10.2f}{count / cpu[name]:>10.1f}{'':>7}" for name in runs))
        print("\nwhole render / decode+encode alone, wall: " + ", ".join(f"{name} {total / floor:.1f}x" for name, (total, _) in runs.items())
              + "; CPU: " + ", ".join(f"{name} {cpu[name] / floor_cpu:.1f}x" for name in runs))


def memory() -> None:
    """Peak RSS of a whole `lipsync dub` process for a 10 s and a 60 s plate (the GRID sample looped)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, model_note = model_file(tmp)
        with open_plate(SAMPLES / "grid_bbaf2n.mp4") as sample:
            images = [f.image for f in sample]
            info = sample.info
        print(f"\nmemory: the GRID sample ({info.width}x{info.height}) looped; model {model_note}")
        for seconds in (10, 60):
            plate = tmp / f"plate_{seconds}s.mp4"
            count = int(seconds * info.fps)
            with open_writer(plate, fps=info.fps, width=info.width, height=info.height) as out:
                for i in range(count):
                    # Back and forth, so the loop has no jump that would lose the face for a frame.
                    cycle = i % (2 * len(images) - 2)
                    out.write(images[cycle if cycle < len(images) else 2 * len(images) - 2 - cycle])
            started = time.perf_counter()
            result = subprocess.run(
                ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lipsync_core.cli", "dub", str(plate),
                 str(SAMPLES / "dub_speech.wav"), "-o", str(tmp / f"out_{seconds}s.mp4"), "--model", str(model),
                 "--device", "cpu"],
                cwd=ROOT, capture_output=True, text=True,
            )
            if result.returncode != 0:
                raise SystemExit(result.stderr[-2000:])
            peak_mb = int(result.stderr.strip().splitlines()[-1]) / 1024
            print(f"  {seconds:>3} s plate ({count} frames): peak RSS {peak_mb:.0f} MB, {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS for a 10 s and a 60 s plate")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    speed(args.data, args.frames)
    if args.memory:
        memory()


if __name__ == "__main__":
    main()
