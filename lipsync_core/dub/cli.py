"""`lipsync dub PLATE AUDIO -o OUT`: the command most users run first."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading

from tqdm import tqdm

from .pipeline import DEFAULT_BATCH, DEFAULT_MODEL, dub


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "dub",
        help="re-generate the lips of a plate to match new dialogue",
        description="Dub PLATE (video file or image sequence: plate.####.exr) with AUDIO and write the "
        "result to OUT, chosen by its name: .mp4 (H.264 + the dub), .mov (ProRes 4444, mask as alpha, "
        "+ the dub), out.####.exr (mask as layer lipsync.mask, source headers kept) or out.####.png. "
        "Frames without a usable face, and frames bypassed in the shot, pass through untouched. "
        "A sidecar PLATE.lipsync.json (from `lipsync analyze` or the panel) is used when present.",
    )
    parser.add_argument("plate", help="video file, image sequence pattern (plate.####.exr) or one frame of it")
    parser.add_argument("audio", help="the dub: any audio file (or a video's audio track)")
    parser.add_argument("-o", "--output", required=True, help="out.mp4, out.mov, out.####.exr or out.####.png")
    parser.add_argument(
        "--frames", type=frame_range, metavar="A-B",
        help="render only frames A-B of the plate's own numbering (default: the shot's range). The audio stays "
        "anchored at the shot's first frame and the face is tracked over the whole shot, so chunks rendered "
        "separately match a full render. The shot is the sidecar's range, else the whole plate: to dub part "
        "of a long plate, set the shot's range once with `lipsync analyze PLATE --frames A-B`",
    )
    parser.add_argument("--shot", help="shot sidecar to use instead of the one next to the plate")
    add_render_options(parser)
    parser.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted image-sequence render from its first missing frame",
    )
    parser.add_argument(
        "--progress-json", action="store_true",
        help='report progress as JSON lines on stdout ({"stage": "render", "done": 3, "total": 75}) instead of bars',
    )
    parser.set_defaults(run=run)


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """The options `dub` shares with `batch` (where they are the defaults for every shot)."""
    parser.add_argument(
        "--audio-offset", default="0", metavar="OFFSET",
        help="start the dub later (positive) or earlier (negative) than the shot's first frame: frames as 3f, "
        "seconds as 0.12s; write a negative one as --audio-offset=-3f (default: 0)",
    )
    parser.add_argument("--face", type=int, help="which face to dub when there are several (0 = the largest; default: the shot's choice)")
    parser.add_argument("--model", help=f"model file (.safetensors; default: {DEFAULT_MODEL.name}, bundled)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the model runs (default: auto)")
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH,
        help=f"frames generated together (default: {DEFAULT_BATCH}); chunks of one shot must use the same value",
    )


def frame_range(text: str) -> tuple[int, int]:
    """'1001-1050' (or one frame, '1001') -> (1001, 1050)."""
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame range: write A-B, e.g. 1001-1050")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise argparse.ArgumentTypeError(f"frame range {text!r} is empty: the first frame is after the last")
    return first, last


class ProgressBars:
    """One tqdm bar per stage (analyze, render, ...), each with its rate and ETA."""

    def __init__(self, label: str = ""):
        self._label = label
        self._bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self._bars.get(stage)
        if bar is None:
            self.close()  # stages follow one another: finish the previous bar before starting the next
            bar = self._bars[stage] = tqdm(
                total=total, desc=f"{self._label}{stage}", unit="frame", file=sys.stderr, dynamic_ncols=True,
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


class JsonProgress:
    """Progress for programs (the panel): one JSON object per line on stdout, flushed at once."""

    def __call__(self, stage: str, done: int, total: int) -> None:
        print(json.dumps({"stage": stage, "done": done, "total": total}), flush=True)

    def close(self) -> None:
        pass


def run(args: argparse.Namespace) -> int:
    bars = JsonProgress() if getattr(args, "progress_json", False) else ProgressBars()
    # SIGTERM (how the panel cancels) stops the render between frames, leaving nothing half-written.
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        report = dub(
            args.plate, args.audio, args.output, frames=args.frames, resume=args.resume, shot=args.shot,
            face=args.face, audio_offset=args.audio_offset, model=args.model, device=args.device,
            batch=args.batch, progress=bars, cancel=cancel,
        )
    finally:
        bars.close()
    for line in report.lines():
        print(line)
    return 0

