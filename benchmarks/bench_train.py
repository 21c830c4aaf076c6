"""Training-side speed: prepare (clips -> training cache), one training step of the generator and of
SyncNet, and `lipsync personalize` on 30 s of one actor's footage, each next to a reference measured in
the same run.

- prepare: frames/s of `prepare_clip` (decode at 25 fps, face tracking, aligned crops, masks, mel) next to
  decoding and encoding the same frames with the renderer's writer (`bench_dub.decode_encode`);
- train step: median seconds of one step of `train_generator` (batch 4 windows of 5 frames, with the
  SyncNet loss) and of `train_syncnet` (batch 48), read from the run's own log, next to one training step
  (forward, backward, Adam) of the Wav2Lip-style 96 px U-Net of bench_models on the same number of
  frames (L1 loss only: no SyncNet or discriminator, so it is the lighter of the two);
- personalize: wall time and peak RSS of the `lipsync personalize` command (preparing the footage,
  fine-tuning with early stopping, the held-out measures) on the first 30 s of
  av/tanshuai0219_test_data_pose_source2.mp4, next to the footage's duration and its decode+encode time.

Ratios are given in wall time and, where the work runs in this process or one child, in CPU time
(`bench_dub.clocked`: every thread counted), the figure that survives a machine shared with other work.
The models are the bundled one when it exists, else random weights of the same config (the same speed;
personalization may stop at a different step). Usage:
    python benchmarks/bench_train.py [--quick] [--json train.json] [--data ../shared/data]
--quick: one 3 s clip, the 'cpu' config, 3 timed steps, personalization of 5 s for 2 steps: a check that
it all runs, not numbers to quote. Run on an otherwise idle machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dub import SAMPLES, clocked, decode_encode, model_file  # noqa: E402
from benchlib import describe, machine_facts, run_python, write_results  # noqa: E402
from bench_models import build_wav2lip  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.models.checkpoint import file_metadata  # noqa: E402
from lipsync_core.models.config import get_config  # noqa: E402
from lipsync_core.train.generator_trainer import WINDOW, train_generator  # noqa: E402
from lipsync_core.train.prepare import ClipSource, prepare_clip  # noqa: E402
from lipsync_core.train.syncnet_trainer import train_syncnet  # noqa: E402

PREPARE_CLIPS = [
    "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg",  # 360x288, 3 s
    "av/yiranran_Data_31.mp4",  # 1280x720, 24 s
]
QUICK_PREPARE_CLIPS = PREPARE_CLIPS[:1]
PERSONALIZE_CLIP = "av/tanshuai0219_test_data_pose_source2.mp4"  # one actor, 256x256, 25 fps, 60 s with its own audio
SYNCNET_BATCH = 48
# Windows per generator step. The paper config (a GPU config) at 4 windows needs more than the 24 GiB
# of this project's CPU machine and was OOM-killed there; one window measures its step all the same.
GENERATOR_BATCH = {"cpu": 4, "paper": 1}
# The cross-audio loss renders every window twice; the paper config at one window already peaks near
# 12 GB, so there it is measured without (two windows would not fit 24 GB with the rest).
CROSS_AUDIO = {"cpu": 1.0, "paper": 0.0}


def reference_seconds(plate: Path, frames: tuple[int, int], folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to decode the frames and encode them with the renderer's writer."""
    wall, cpu, _ = clocked(lambda: decode_encode(plate, frames, SAMPLES / "dub_speech.wav", folder / "reference.mp4"))
    return wall, cpu


def measure_prepare(data: Path, names: list[str], config_name: str, folder: Path) -> tuple[list[dict], list]:
    size = get_config(config_name).size
    results, clips = [], []
    for name in names:
        with open_plate(data / name) as plate:
            info = plate.info
        reference, reference_cpu = reference_seconds(data / name, (info.first, info.last), folder)
        wall, cpu, clip = clocked(lambda: prepare_clip(ClipSource(data / name, None), size))
        clips.append(clip)
        results.append({
            "what": f"prepare {Path(name).stem} ({info.width}x{info.height}) at {size} px",
            "value": len(clip) / wall, "unit": "frames/s (25 fps conformed)",
            "reference": f"decode+encode {info.frame_count / reference:.1f} frames/s",
            "ratio": wall / reference, "cpu_ratio": cpu / reference_cpu,
        })
    return results, clips


def step_seconds(log: Path) -> float:
    """Median time between consecutive logged steps, the first (warm-up) step left out."""
    times = [json.loads(line)["time"] for line in log.read_text().splitlines()]
    return statistics.median(b - a for a, b in zip(times[1:], times[2:]))


def wav2lip_step_seconds(frames: int, steps: int) -> float:
    torch.manual_seed(0)
    model = build_wav2lip().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    face, mel, target = torch.rand(frames, 6, 96, 96), torch.randn(frames, 1, 80, 16), torch.rand(frames, 3, 96, 96)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        loss = (model(mel, face) - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def measure_train(clips: list, config_name: str, steps: int, folder: Path) -> list[dict]:
    config = get_config(config_name)
    model, _ = model_file(folder, config_name)
    with contextlib.redirect_stdout(sys.stderr):  # the trainers' progress lines; stdout is the table
        train_generator(clips, clips[:1], folder / f"model_{config_name}", config, steps=steps + 2, syncnet_path=model,
                        batch=GENERATOR_BATCH[config_name], lambda_cross=CROSS_AUDIO[config_name], reader_steps=20,
                        save_every=10**9, eval_every=10**9, device=torch.device("cpu"))
        train_syncnet(clips, clips[:1], folder / f"syncnet_{config_name}", config, steps=steps + 2, batch=SYNCNET_BATCH,
                      eval_every=10**9, device=torch.device("cpu"))
    frames = GENERATOR_BATCH[config_name] * WINDOW
    reference = wav2lip_step_seconds(frames, steps)
    generator = step_seconds(folder / f"model_{config_name}" / "log.jsonl")
    syncnet = step_seconds(folder / f"syncnet_{config_name}" / "log.jsonl")
    note = f"Wav2Lip-style U-Net step, {frames} frames at 96 px: {reference:.2f} s"
    return [
        {"what": f"generator train step, '{config_name}' ({config.size} px), batch {GENERATOR_BATCH[config_name]}x{WINDOW} frames "
                 f"+ sync loss{' + cross-audio loss' if CROSS_AUDIO[config_name] else ''}",
         "value": generator, "unit": "s/step", "reference": note, "ratio": generator / reference},
        {"what": f"SyncNet train step, '{config_name}', batch {SYNCNET_BATCH}", "value": syncnet, "unit": "s/step",
         "reference": note, "ratio": syncnet / reference},
    ]


def measure_personalize(data: Path, seconds: float, steps: int | None, folder: Path) -> dict:
    plate = data / PERSONALIZE_CLIP
    with open_plate(plate) as source:
        info = source.info
    frames = (info.first, info.first + int(seconds * info.fps) - 1)
    reference, reference_cpu = reference_seconds(plate, frames, folder)
    base, note = model_file(folder, "cpu")
    out = folder / "actor.safetensors"
    cmd = ["-m", "lipsync_core.cli", "personalize", str(plate), "--frames", f"{frames[0]}-{frames[1]}",
           "--base", str(base), "-o", str(out), "--device", "cpu"]
    cmd += ["--steps", str(steps)] if steps else []
    run = run_python(cmd, cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"lipsync personalize failed:\n{run.stderr[-2000:]}")
    facts = json.loads(file_metadata(out)["facts"])
    return {
        "what": f"personalize {seconds:g} s of footage ({info.width}x{info.height}), {facts['steps_run']} steps "
                f"(best {facts['best_step']}), model: {note}",
        "value": run.wall_s, "unit": "s wall (prepare + fine-tune + held-out measures)",
        "reference": f"footage {seconds:g} s; decode+encode {reference:.1f} s",
        "ratio": run.wall_s / reference, "cpu_ratio": run.cpu_s / reference_cpu,
        "realtime_ratio": run.wall_s / seconds, "fine_tune_s": facts["seconds"], "peak_rss_mib": run.peak_rss_mib,
    }


def markdown(results: list[dict]) -> str:
    lines = ["| measured | value | unit | reference (same run) | ratio to reference: wall | CPU |",
             "| --- | ---: | --- | --- | ---: | ---: |"]
    for r in results:
        extra = f"; {r['realtime_ratio']:.1f}x real time; peak RSS {r['peak_rss_mib']:.0f} MiB" if "realtime_ratio" in r else ""
        cpu = f"{r['cpu_ratio']:.2f}x" if "cpu_ratio" in r else ""
        lines.append(f"| {r['what']} | {r['value']:.2f} | {r['unit']} | {r['reference']}{extra} | {r['ratio']:.2f}x | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"real media not found at {args.data}", file=sys.stderr)
        return 1
    facts = machine_facts()
    configs = ["cpu"] if args.quick else ["cpu", "paper"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for config_name in configs:
            names = QUICK_PREPARE_CLIPS if args.quick else PREPARE_CLIPS
            prepared, clips = measure_prepare(args.data, names, config_name, folder)
            results += prepared
            results += measure_train(clips, config_name, 3 if args.quick else 10, folder)
        if importlib.util.find_spec("lipsync_core.train.personalize_cli") is not None:
            results.append(measure_personalize(args.data, 5 if args.quick else 30, 2 if args.quick else None, folder))
        else:
            print("`lipsync personalize` is not in this build: personalization not measured", file=sys.stderr)
    print(f"Training side on {describe(facts)}\n")
    print(markdown(results))
    write_results(args.json, "train", args.quick, facts, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
