"""`lipsync eval CLIPS -o REPORT_DIR`: measure a model on real clips, with baselines, and write a report.

Each clip is prepared as for training (`prepare_clip`: 25 fps, aligned crops at the model's size, masks,
its own audio's mel) into a cache of the training format, so a second run starts at once. Then, per clip
(`evaluate_clip`):
- reconstruction: the clip dubbed with its own audio, against the real frames, with the real footage
  (= the plate untouched) and the static mouth as baselines;
- cross-audio (with --cross-audio SPEECH): the clip dubbed with that speech, sync measured against it,
  with the untouched plate and the static mouth against the same speech as baselines;
- identity similarity to the real frames where the optional extra `identity` is installed.
The report folder gets report.md (tables and what each measure means), report.json (every number, per
clip and mean) and mouths/CLIP.png (contact sheet of the mouth over time: real, static, ours, ours with
the other speech).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from tqdm import tqdm

from ..device import pick_device, set_cpu_threads
from ..errors import LipSyncError
from ..evaluate import CROSS_AUDIO_ROWS, OWN_AUDIO_ROWS, evaluate_clip, load_models
from ..face.identity import load_identity_model
from ..models.actor import DEFAULT_MODEL
from ..models.motion import load_motion_model
from ..motion.measure import measure as measure_motion
from ..motion.measure import measures_table
from ..ops.cli import add_command
from ..ops.evaluate import EVALUATE
from ..train.data import load_clip
from ..train.prepare import ClipSource, clips_from_folder, clips_from_manifest, prepare
from ..train.speech_pool import speech_windows
from .report import COLUMNS, MEASURES_TEXT, contact_sheet, markdown_table, mean_rows, write_json

CROSS_COLUMNS = tuple(c for c in COLUMNS if c not in ("lmd", "psnr_lower_face", "ssim_lower_face", "psnr_crop", "ssim_crop",
                                                      "detail_lower_face"))


def add_parser(subparsers) -> None:
    add_command(subparsers, EVALUATE).set_defaults(run=run)


def clip_sources(inputs: list[Path], splits: tuple[str, ...]) -> list[ClipSource]:
    sources = []
    for path in inputs:
        if path.suffix.lower() == ".csv":
            sources += clips_from_manifest(path, splits)
        elif path.is_dir():
            sources += clips_from_folder(path, "eval")
        elif path.is_file():
            wav = path.with_suffix(".wav")
            sources.append(ClipSource(path, wav if wav.exists() else None, "eval"))
        else:
            raise LipSyncError(f"{path}: not found")
    if not sources:
        raise LipSyncError(f"no clips found in {', '.join(map(str, inputs))} (manifest splits: {', '.join(splits)})")
    return sources


def run(args) -> int:
    set_cpu_threads()
    args.output.mkdir(parents=True, exist_ok=True)
    model_path = args.model or DEFAULT_MODEL
    if not model_path.is_file() and args.model is None:
        raise LipSyncError(f"the bundled model {model_path} is not there yet: pass a trained model with --model")
    model, syncnet, facts = load_models(model_path, args.syncnet, pick_device(args.device))
    size = model.config.size
    sources = clip_sources(args.inputs, tuple(args.split.split(",")))
    skipped = prepare(sources, args.cache, size)
    clips = []
    for source in sources:
        if source.name not in skipped:
            clip = load_clip(args.cache / f"{source.name}.npz")
            if clip.meta["size"] != size:
                raise LipSyncError(f"{args.cache}: {clip.name} was prepared at {clip.meta['size']} px, the model works "
                                   f"at {size} px: use another --cache")
            clips.append(clip)
    if not clips:
        raise LipSyncError("no clip could be prepared: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    identity = load_identity_model()
    motion_model = load_motion_model(args.motion_model)  # before the long part: a bad file fails at once
    other = speech_windows(args.cross_audio, model.config.mel_window) if args.cross_audio else None

    per_clip = {}
    bar = tqdm(clips, desc="eval", unit="clip")
    for clip in bar:
        bar.set_postfix_str(clip.name[:40])
        rows = evaluate_clip(model, syncnet, clip, other, identity)
        contact_sheet(args.output / "mouths" / f"{clip.name}.png", rows.pop("_frames"))
        per_clip[clip.name] = rows
    mean = mean_rows(per_clip)
    motion = measure_motion(motion_model, clips) if len(clips) > 1 else None
    write_json(args.output / "report.json", {
        "model": str(model_path), "syncnet": str(args.syncnet or "in the model file"), "config": model.config.name,
        "crop_px": size, "model_facts": facts, "cross_audio": str(args.cross_audio) if args.cross_audio else None,
        "identity_model": identity is not None, "mean": mean, "clips": per_clip, "skipped": skipped, "motion": motion,
    })
    (args.output / "report.md").write_text(report_text(args, model_path, model.config, mean, per_clip, skipped, identity is not None, motion))
    print(summary_text(mean, len(per_clip)))
    if motion:
        print(f"\nMotion (speech -> mouth shape), median of {len(clips)} clips:\n{measures_table(motion)}")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(f"\nwrote {args.output / 'report.md'}, report.json and mouths/ (contact sheets)")
    return 0


def _own(rows: dict) -> dict:
    return {k: rows[k] for k in OWN_AUDIO_ROWS if k in rows}


def _cross(rows: dict) -> dict:
    return {k: rows[k] for k in CROSS_AUDIO_ROWS if k in rows}


def summary_text(mean: dict, count: int) -> str:
    text = f"Own audio (reconstruction), mean of {count} clips:\n{markdown_table(_own(mean))}"
    if _cross(mean):
        text += f"\n\nOther speech (cross-audio), mean of {count} clips:\n{markdown_table(_cross(mean), CROSS_COLUMNS)}"
    return text


def report_text(args, model_path: Path, config, mean: dict, per_clip: dict, skipped: dict, identity: bool,
                motion: dict | None) -> str:
    cross = (f"every clip also dubbed with `{args.cross_audio}` from its first frame, over the frames both "
             "cover; sync measured against that speech" if args.cross_audio else "not run (give --cross-audio SPEECH)")
    lines = [
        "# Lip-sync evaluation",
        "",
        f"- model: `{model_path}` (config `{config.name}`, {config.size} px crops); SyncNet: {f'`{args.syncnet}`' if args.syncnet else 'the one in the model file'}",
        f"- clips: {len(per_clip)} from {', '.join(f'`{p}`' for p in args.inputs)}"
        + (f" (manifest splits: {args.split})" if any(p.suffix.lower() == ".csv" for p in args.inputs) else ""),
        f"- cross-audio: {cross}",
        f"- identity similarity: {'dlib face-recognition ResNet' if identity else 'not measured (install the optional extra: pip install lipsync[identity])'}",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; command: `lipsync eval` (this report: report.json has every number)",
        "",
        "## Own audio (reconstruction)",
        "Each clip dubbed with its own audio, reference = its first face frame. `real` is the footage itself "
        "(also the plate left untouched): the ceiling for sync, and PSNR inf / SSIM 1 / LMD 0 by definition. "
        "`static` pastes the reference's lower face into every frame: no lip motion at all.",
        "",
        markdown_table(_own(mean)),
        "",
    ]
    if _cross(mean):
        lines += [
            "## Other speech (cross-audio)",
            "`cross_audio_plate`: the footage left untouched, measured against the other speech (what not dubbing "
            "scores); `cross_audio_static`: the static mouth; `cross_audio`: ours dubbing the other speech.",
            "",
            markdown_table(_cross(mean), CROSS_COLUMNS),
            "",
        ]
    if motion:
        lines += ["## Motion (speech -> mouth shape)",
                  "The motion model's prediction against the face mesh's real mouth (see `lipsync_core/motion/measure.py`): "
                  "own audio with the actor's style from the other half of each clip, other speech (each clip dubbed with "
                  "the next clip's speech), silence.", "", measures_table(motion), ""]
    lines += ["## What the measures are", MEASURES_TEXT, "", "## Per clip", ""]
    for name, rows in per_clip.items():
        lines += [f"### {name}", "", markdown_table(rows), "", f"![mouths over time](mouths/{name}.png)", ""]
    if skipped:
        lines += ["## Skipped", ""] + [f"- {name}: {reason}" for name, reason in skipped.items()] + [""]
    return "\n".join(lines)
