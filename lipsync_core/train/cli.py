"""`lipsync train prepare|syncnet|model`: the training module's command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..device import pick_device, set_cpu_threads
from ..errors import LipSyncError
from ..models.config import CONFIGS, get_config
from .data import load_cache

DEFAULT_CACHE = Path("cache/train")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="prepare training data, train SyncNet, train the generator",
        description="Train LipSync models on your own footage. Order: prepare, syncnet, model. "
        "Every step resumes where it stopped when run again with the same folders.",
    )
    steps = parser.add_subparsers(dest="step", metavar="STEP", required=True)

    prep = steps.add_parser("prepare", help="build the training cache from clips (incremental)")
    prep.add_argument("clips", nargs="*", type=Path, help="video files or folders of them (default: --manifest)")
    prep.add_argument("--manifest", type=Path, help="a manifest.csv like ../shared/data/manifest.csv")
    prep.add_argument("--split", default="train", help="split for clips given directly (default: train)")
    prep.add_argument("--splits", default="train,dev", help="manifest splits to prepare (default: train,dev)")
    _common(prep)
    prep.set_defaults(run=run_prepare)

    sync = steps.add_parser("syncnet", help="train SyncNet contrastively, early-stopped on the dev split")
    _common(sync)
    sync.add_argument("--run", dest="run_dir", type=Path, default=Path("runs/syncnet"), help="run folder (resumes if it holds a state)")
    sync.add_argument("--steps", type=int, default=3000)
    sync.add_argument("--batch", type=int, default=48)
    sync.add_argument("--lr", type=float, default=5e-4)
    sync.set_defaults(run=run_syncnet)

    model = steps.add_parser("model", help="train the generator")
    _common(model)
    model.add_argument("--run", dest="run_dir", type=Path, default=Path("runs/model"), help="run folder (resumes if it holds a state)")
    model.add_argument("--syncnet", type=Path, help="trained SyncNet (.safetensors) for the sync loss")
    model.add_argument("--init", type=Path, help="start from this model file's generator weights")
    model.add_argument("--steps", type=int, default=20000)
    model.add_argument("--batch", type=int, default=4, help="windows of 5 frames per step")
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--lambda-rec", type=float, default=10.0)
    model.add_argument("--lambda-sync", type=float, default=0.1)
    model.add_argument("--lambda-mouth", type=float, default=1.0,
                       help="weight of the mouth shape read off the audio codes (training only; 0 turns it off)")
    model.add_argument("--sync-start", type=int, default=0, help="steps before the sync loss joins")
    model.add_argument("--save-every", type=int, default=100)
    model.add_argument("--eval-every", type=int, default=500)
    model.set_defaults(run=run_model)

    package = steps.add_parser("package", help="bundle a trained generator and SyncNet into one model file")
    package.add_argument("model", type=Path, help="the generator (runs/model/model.safetensors)")
    package.add_argument("syncnet", type=Path, help="the SyncNet (runs/syncnet/syncnet.safetensors)")
    package.add_argument("-o", "--output", type=Path, required=True, help="the model file to write (.safetensors)")
    package.set_defaults(run=run_package)

    card = steps.add_parser("card", help="measure a model on the dev split and write its model card")
    _common(card)
    card.add_argument("model", type=Path, help="model file (.safetensors with generator and SyncNet)")
    card.add_argument("--out", type=Path, help="folder for the card, video and contact sheet (default: beside the model)")
    card.add_argument("--cross-audio", type=Path, required=True, help="speech not from the dev clips, for cross-audio dubbing")
    card.add_argument("--manifest", type=Path, help="manifest.csv naming each clip's license")
    card.set_defaults(run=run_card)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"training cache folder (default: {DEFAULT_CACHE})")
    parser.add_argument("--config", default="cpu", choices=sorted(CONFIGS), help="model config (default: cpu)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--seed", type=int, default=0)


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


def run_model(args) -> int:
    from .generator_trainer import train_generator

    set_cpu_threads()
    train, dev = _splits(args)
    path = train_generator(train, dev, args.run_dir, get_config(args.config), steps=args.steps, syncnet_path=args.syncnet,
                           batch=args.batch, lr=args.lr, lambda_rec=args.lambda_rec, lambda_sync=args.lambda_sync,
                           lambda_mouth=args.lambda_mouth, sync_start=args.sync_start, seed=args.seed, save_every=args.save_every,
                           eval_every=args.eval_every, device=pick_device(args.device), init_from=args.init)
    print(f"model: {path}")
    return 0


def run_card(args) -> int:
    import csv

    from ..eval.report import markdown_table
    from .card import write_card

    set_cpu_threads()
    dev = load_cache(args.cache, "dev", 5)
    if not dev:
        raise LipSyncError(f"{args.cache}: no prepared dev clips; run `lipsync train prepare` first")
    licenses = {}
    if args.manifest:
        with args.manifest.open(newline="") as f:
            licenses = {Path(r["file"]).stem: r["license"] for r in csv.DictReader(f)}
    summary = write_card(args.model, dev, args.out or args.model.parent, args.cross_audio, licenses)
    print(markdown_table(summary))
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
