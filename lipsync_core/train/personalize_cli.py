"""`lipsync personalize`: an actor model from a few seconds to minutes of the actor's own footage."""

from __future__ import annotations

import json
import signal

from ..device import pick_device, set_cpu_threads
from ..errors import LipSyncError
from ..models.actor import DEFAULT_MODEL
from ..ops.cli import add_command
from ..ops.personalize import PERSONALIZE


def add_parser(subparsers) -> None:
    add_command(subparsers, PERSONALIZE).set_defaults(run=run_personalize)


def _json_progress(stage: str, done: int, total: int, losses: dict | None = None) -> None:
    print(json.dumps({"stage": stage, "done": done, "total": total, **(losses or {})}), flush=True)


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
    base = args.base or DEFAULT_MODEL
    config = base_config(base)
    ranges = args.frames or [None] * len(args.clips)
    audios = args.audio or [None] * len(args.clips)
    clips = []
    for i, (path, audio, frames) in enumerate(zip(args.clips, audios, ranges)):
        if report:
            report("prepare", i, len(args.clips))
        else:
            print(f"preparing {path}" + (f" with {audio}" if audio else "") + (f", frames {frames[0]}-{frames[1]}" if frames else ""))
        clips.append(prepare_footage(path, audio, frames, config.size))
    facts = personalize(clips, base, args.output, syncnet_path=args.syncnet, steps=args.steps, rank=args.rank,
                        sync_regularizer=args.sync_regularizer, lr=args.lr, batch=args.batch, seed=args.seed,
                        device=pick_device(args.device),
                        progress=report)
    size_kib = args.output.stat().st_size / 1024
    print(f"wrote {args.output} ({size_kib:.0f} KiB): best held-out step {facts['best_step']} of {facts['steps_run']}, "
          f"{facts['seconds'] / 60:.1f} min")
    for name, parts in facts.get("measures", {}).items():  # held-out footage, zero-shot vs personalized
        for part, values in parts.items():
            print(f"  held-out, {name}, {part.replace('_', ' ')}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
    return 0
