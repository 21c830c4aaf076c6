"""`lipsync dub PLATE AUDIO -o OUT`: the command most users run first."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from tqdm import tqdm

from ..ops.cli import add_arguments, add_command
from ..ops.generate import GENERATE, MASK_CONTROLS, RENDER_OPTIONS
from .pipeline import dub


def add_parser(subparsers) -> None:
    add_command(subparsers, GENERATE).set_defaults(run=run)


def add_render_options(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, [GENERATE.param(name) for name in RENDER_OPTIONS])


def given_mask_controls(args: argparse.Namespace) -> dict[str, float]:
    """The mask controls given on the command line: they replace the shot's for this render."""
    return {p.name: getattr(args, p.name) for p in MASK_CONTROLS if getattr(args, p.name) is not None}


def given_motion_controls(args: argparse.Namespace) -> dict[str, float]:
    """The articulation gain given on the command line: it replaces the shot's for this render."""
    return {"gain": args.articulation} if getattr(args, "articulation", None) is not None else {}


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


    def report(self, lines: list[str]) -> None:
        for line in lines:
            print(line)


class JsonProgress:
    """Progress for programs (the panel, host workers): stdout holds JSON objects only, one per line, flushed
    at once: {"stage": "render", "done": 3, "total": 75} while rendering, then {"line": "..."} for each line
    of the report."""

    def __init__(self):
        self._out = sys.stdout  # kept: during the render anything else printed goes to stderr

    def __call__(self, stage: str, done: int, total: int) -> None:
        print(json.dumps({"stage": stage, "done": done, "total": total}), file=self._out, flush=True)

    def report(self, lines: list[str]) -> None:
        for line in lines:
            print(json.dumps({"line": line}), file=self._out, flush=True)

    def close(self) -> None:
        pass


def run(args: argparse.Namespace) -> int:
    json_lines = getattr(args, "progress_json", False)
    bars = JsonProgress() if json_lines else ProgressBars()
    # SIGTERM (how the panel cancels) stops the render between frames, leaving nothing half-written.
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        with contextlib.redirect_stdout(sys.stderr) if json_lines else contextlib.nullcontext():
            report = dub(
                args.plate, args.audio, args.output, frames=args.frames, resume=args.resume, overwrite=args.overwrite,
                shot=args.shot, face=args.face, audio_offset=args.audio_offset, model=args.model, device=args.device,
                batch=args.batch, mask=given_mask_controls(args), mouth=args.mouth, motion_model=args.motion_model,
                motion=given_motion_controls(args), motion_curves=args.motion_curves, appearance=args.appearance or (),
                actor=args.actor, audio_peaks=args.audio_peaks, colourspace=args.colourspace, ocio=args.ocio,
                watermark=args.watermark, progress=bars, cancel=cancel,
            )
    finally:
        bars.close()
    bars.report(report.lines())
    return 0

