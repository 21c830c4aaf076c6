"""`lipsync personalize`: an actor model from a few seconds to minutes of the actor's own footage."""

from __future__ import annotations

import argparse
import json
import re
import signal
from pathlib import Path

from ..device import pick_device, set_cpu_threads
from ..errors import LipSyncError
from ..models.actor import DEFAULT_MODEL


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "personalize", help="adapt the model to one actor: writes an actor model for `lipsync dub --model`",
        description="Fine-tune the model's decoder on clips of one actor (their own audio), with the sync "
        "regularizer keeping it in sync with new speech. The last ~20% of each clip is held out for early "
        "stopping and the measures in the actor file's card. Run again with the same arguments to resume.",
    )
    parser.add_argument("clips", nargs="+", type=Path, help="video files of the actor talking")
    parser.add_argument("--audio", action="append", type=Path, metavar="FILE",
                        help="the dialogue of a clip, when it is not the clip's own audio track; give it once per "
                        "clip, in order")
    parser.add_argument("--frames", action="append", metavar="A-B",
                        help="frame range of a clip in the plate's numbering; give it once per clip, in order")
    parser.add_argument("--base", type=Path, default=DEFAULT_MODEL, help=f"base model (default: {DEFAULT_MODEL.name}, bundled)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="actor model to write (.safetensors)")
    parser.add_argument("--syncnet", type=Path, help="SyncNet model file, when the base model file holds none")
    parser.add_argument("--steps", type=int, default=200, help="most fine-tuning steps (default: 200; stops earlier "
                        "when the held-out footage stops improving)")
    parser.add_argument("--rank", type=_rank, default=8, help="rank of the conv weight updates; 0: only the small "
                        "decoder tensors; 'full': the whole decoder (largest file) (default: 8)")
    parser.add_argument("--no-sync-regularizer", dest="sync_regularizer", action="store_false",
                        help="fine-tune without the sync regularizer (for comparison: sync on new speech drifts)")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default: 3e-4)")
    parser.add_argument("--batch", type=int, default=2, help="windows of 5 frames per step (default: 2)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress-json", action="store_true",
                        help='progress as JSON lines on stdout: {"stage": ..., "done": ..., "total": ..., "loss": ...}')
    parser.set_defaults(run=run_personalize)


def _json_progress(stage: str, done: int, total: int, losses: dict | None = None) -> None:
    print(json.dumps({"stage": stage, "done": done, "total": total, **(losses or {})}), flush=True)


def _rank(text: str) -> int | None:
    if text == "full":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"rank {text!r}: a whole number, or 'full'")
    return int(text)


def _frame_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise LipSyncError(f"--frames {text!r}: write a range as FIRST-LAST, e.g. 1001-1240")
    return int(match.group(1)), int(match.group(2))


def run_personalize(args) -> int:
    from .personalize import base_config, personalize, prepare_footage

    if args.output.suffix != ".safetensors":
        raise LipSyncError(f"{args.output}: an actor model is written as .safetensors")
    for option in ("frames", "audio"):
        given = getattr(args, option)
        if given and len(given) != len(args.clips):
            raise LipSyncError(f"--{option} given {len(given)} times for {len(args.clips)} clips: give it once per clip")
    set_cpu_threads()
    # SIGTERM (how the panel cancels) stops the run as Ctrl-C does: state kept, no actor file written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    report = _json_progress if args.progress_json else None
    config = base_config(args.base)
    ranges = [_frame_range(f) for f in args.frames] if args.frames else [None] * len(args.clips)
    audios = args.audio or [None] * len(args.clips)
    clips = []
    for i, (path, audio, frames) in enumerate(zip(args.clips, audios, ranges)):
        if report:
            report("prepare", i, len(args.clips))
        else:
            print(f"preparing {path}" + (f" with {audio}" if audio else "") + (f", frames {frames[0]}-{frames[1]}" if frames else ""))
        clips.append(prepare_footage(path, audio, frames, config.size))
    facts = personalize(clips, args.base, args.output, syncnet_path=args.syncnet, steps=args.steps, rank=args.rank,
                        sync_regularizer=args.sync_regularizer, lr=args.lr, batch=args.batch, seed=args.seed,
                        device=pick_device(args.device),
                        progress=(lambda done, total, losses: report("train", done, total, losses)) if report else None)
    size_kib = args.output.stat().st_size / 1024
    print(f"wrote {args.output} ({size_kib:.0f} KiB): best held-out step {facts['best_step']} of {facts['steps_run']}, "
          f"{facts['seconds'] / 60:.1f} min")
    for name, parts in facts.get("measures", {}).items():  # held-out footage, zero-shot vs personalized
        for part, values in parts.items():
            print(f"  held-out, {name}, {part.replace('_', ' ')}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
    return 0
