"""`lipsync train prepare|syncnet|model`: the training module's command line."""

from __future__ import annotations

import csv
from pathlib import Path

from ..device import pick_device, set_cpu_threads
from ..errors import LipSyncError
from ..models.config import get_config
from ..ops.cli import add_command
from ..ops.train import CARD, MOTION_CARD, MOTION_ENSEMBLE, PACKAGE, PREPARE, SYNCNET, TRAIN, TRAIN_MOTION
from .data import load_cache


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="prepare training data, train SyncNet, train the generator",
        description="Train LipSync models on your own footage. Order: prepare, syncnet, motion, model. "
        "Every step resumes where it stopped when run again with the same folders.",
    )
    steps = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    for operation, run in ((PREPARE, run_prepare), (SYNCNET, run_syncnet), (TRAIN_MOTION, run_motion),
                           (MOTION_ENSEMBLE, run_motion_ensemble), (TRAIN, run_model),
                           (PACKAGE, run_package), (CARD, run_card), (MOTION_CARD, run_motion_card)):
        add_command(steps, operation).set_defaults(run=run)


def run_prepare(args) -> int:
    from .prepare import clips_from_folder, clips_from_manifest, prepare, ClipSource

    sources = []
    if args.manifest:
        sources += clips_from_manifest(args.manifest, tuple(args.splits.split(",")))
    for path in args.clips:
        sources += clips_from_folder(path, args.split) if path.is_dir() else [ClipSource(path, None, args.split)]
    if not sources:
        raise LipSyncError("no clips: give video files/folders or --manifest")
    skipped = prepare(sources, args.cache, get_config(args.config).size)
    print(f"prepared {len(sources) - len(skipped)} of {len(sources)} clips into {args.cache}")
    for name, reason in skipped.items():
        print(f"  skipped {name}: {reason}")
    return 0


def _splits(args):
    train, dev = load_cache(args.cache, "train", 5), load_cache(args.cache, "dev", 5)
    if not train:
        raise LipSyncError(f"{args.cache}: no prepared train clips; run `lipsync train prepare` first")
    return train, dev or train[:1]


def run_syncnet(args) -> int:
    from .syncnet_trainer import train_syncnet

    set_cpu_threads()
    train, dev = _splits(args)
    best = train_syncnet(train, dev, args.run_dir, get_config(args.config), steps=args.steps, batch=args.batch,
                         lr=args.lr, seed=args.seed, device=pick_device(args.device))
    print(f"best SyncNet: {best}")
    return 0


def run_motion(args) -> int:
    from .motion_trainer import train_motion

    set_cpu_threads()
    train, dev = _splits(args)
    path = train_motion(train, dev, args.run_dir, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    print(f"motion model: {path}")
    return 0


def run_motion_ensemble(args) -> int:
    from .motion_trainer import ensemble_motion

    set_cpu_threads()
    train, dev = _splits(args)
    model = ensemble_motion(args.models, train, dev, args.output)
    print(f"motion model: {args.output} (the average of {len(model.net.members)} networks, dev median opening r "
          f"{model.facts['dev_opening_r_median']:.3f})")
    return 0


def run_model(args) -> int:
    from .generator_trainer import train_generator
    from .speech_pool import joined_speech_pool

    set_cpu_threads()
    train, dev = _splits(args)
    config = get_config(args.config)
    # The renderer of the footage path dubs over warped frames of the dev clips, not from speech alone.
    speech = joined_speech_pool(config.mel_window) if args.select_by_speech and not config.footage else None
    path = train_generator(train, dev, args.run_dir, config, steps=args.steps, syncnet_path=args.syncnet,
                           batch=args.batch, lr=args.lr, lambda_rec=args.lambda_rec, lambda_sync=args.lambda_sync,
                           lambda_mouth=args.lambda_mouth, lambda_cross=args.lambda_cross, lambda_adv=args.lambda_adv,
                           lambda_trust=args.lambda_trust,
                           sync_start=args.sync_start, seed=args.seed, save_every=args.save_every,
                           eval_every=args.eval_every, device=pick_device(args.device), init_from=args.init,
                           select_speech=speech)
    print(f"model: {path}")
    return 0


def run_card(args) -> int:
    from ..eval.report import markdown_table
    from .card import write_card

    set_cpu_threads()
    dev = load_cache(args.cache, "dev", 5)
    if not dev:
        raise LipSyncError(f"{args.cache}: no prepared dev clips; run `lipsync train prepare` first")
    summary = write_card(args.model, dev, args.out or args.model.parent, args.cross_audio, _licenses(args.manifest))
    print(markdown_table(summary))
    return 0


def _licenses(manifest: Path | None) -> dict[str, str]:
    """Clip name -> license, from a manifest.csv (empty without one)."""
    if not manifest:
        return {}
    with manifest.open(newline="") as f:
        return {Path(r["file"]).stem: r["license"] for r in csv.DictReader(f)}


def run_motion_card(args) -> int:
    from ..dub.pipeline import load_model
    from ..motion.measure import measures_table
    from .motion_card import write_motion_card

    set_cpu_threads()
    dev = load_cache(args.cache, "dev", 5)
    if not dev:
        raise LipSyncError(f"{args.cache}: no prepared dev clips; run `lipsync train prepare` first")
    generator = load_model(args.generator, pick_device(args.device)).eval()
    result = write_motion_card(args.model, dev, args.out or args.model.parent, generator, _licenses(args.manifest))
    print(measures_table(result))
    return 0


def run_package(args) -> int:
    from ..models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from ..models.stylelipsync import StyleLipSync
    from ..models.syncnet import SyncNet

    config, facts = read_metadata(args.model)
    generator, syncnet = StyleLipSync(config), SyncNet(config)
    load_checkpoint(args.model, {"generator": generator}, config)
    sync_facts = load_checkpoint(args.syncnet, {"syncnet": syncnet}, config)
    save_checkpoint(args.output, {"generator": generator, "syncnet": syncnet}, config, {**facts, "syncnet": sync_facts})
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    return 0
