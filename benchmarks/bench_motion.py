"""Speed of the motion stage: the mouth shape of every frame of 60 s of dub audio (25 fps: 1,500 frames).

Measured in one run, each the median of several repeats: the log-mel of the audio alone (the reference: every
dub pays it), the motion model's prediction from it, and the whole stage as a render runs it on a shot (the
prediction, the silence gate, the actor's style and controls). The aim: well under a second on this CPU.
    python benchmarks/bench_motion.py [--quick] [--json motion.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import describe, machine_facts, write_results  # noqa: E402

from lipsync_core.device import set_cpu_threads  # noqa: E402
from lipsync_core.media.audio import SAMPLE_RATE, load_audio, log_mel  # noqa: E402
from lipsync_core.models.motion import load_motion_model  # noqa: E402
from lipsync_core.motion.stage import predict  # noqa: E402
from lipsync_core.motion.style import ActorStyle  # noqa: E402

SPEECH = ROOT / "resources" / "samples" / "dub_speech.wav"
SECONDS = 60.0
FPS = 25.0


def median_time(work, repeats: int) -> float:
    work()  # warm-up: first-call allocations
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a check that it runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    set_cpu_threads()
    facts = machine_facts()
    speech = load_audio(SPEECH)
    audio = np.resize(speech, int(SECONDS * SAMPLE_RATE)).astype(np.float32)  # the sample looped to 60 s
    model = load_motion_model()
    times = np.arange(int(SECONDS * FPS)) / FPS
    mel = log_mel(audio)
    rest = np.zeros((57, 2), np.float32)
    style = ActorStyle(rest, model.gain, 10.0, 5.0, 3.0, "calibrated")
    repeats = 2 if args.quick else 7
    reference = median_time(lambda: log_mel(audio), repeats)
    prediction = median_time(lambda: model.predict(mel, times), repeats)
    stage = median_time(lambda: predict(model, style, mel, times), repeats)
    results = [
        {"what": "motion model prediction, 60 s of audio", "seconds": prediction, "reference": "log-mel of the same audio",
         "reference_s": reference, "ratio": prediction / reference},
        {"what": "motion stage (prediction, silence gate, style), 60 s", "seconds": stage, "reference": "log-mel of the same audio",
         "reference_s": reference, "ratio": stage / reference},
    ]
    print(f"motion stage on {describe(facts)}\n")
    print("| what | seconds | log-mel alone (s) | x log-mel |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['what']} | {r['seconds']:.3f} | {r['reference_s']:.3f} | {r['ratio']:.2f} |")
    write_results(args.json, "motion", args.quick, facts, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
