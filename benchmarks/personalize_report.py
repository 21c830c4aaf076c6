"""Personalization report: zero-shot vs personalized actors of the dev split, and lip-sync on other
speech over the adaptation steps with and without the sync regularizer (the paper's Figure 7b).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .venv/bin/python benchmarks/personalize_report.py

Each dev clip of the training cache is one actor, personalized with `personalize` (trained on the first
~80 % of the clip, early-stopping checks and the card's measures on the rest) once with and once
without the regularizer, for all `--steps` (no early stop, so the curves run to the end; the actor
file still keeps the best held-out step). At every check the whole clip is dubbed with speech from
../shared/data/audio (used here to measure only; it is not shipped) and measured. The defaults (300
steps at learning rate 1e-3, 3x `lipsync personalize`'s) push the adaptation hard enough to show drift.

Writes into --out (default docs/): personalize_sync_vs_steps.png, personalize_report.json,
personalize_report.md and personalize_side_by_side.mp4 (the first actor dubbed with other speech:
zero-shot | personalized with | without the regularizer). Runs live in --work (default
runs/personalize_report/<base model sha256>/): a finished run is not redone and an interrupted one
resumes, so the command can simply be run again. One thread per process, about 1.5 s a step (with the
regularizer) plus the checks: all 6 dev actors take about 2 hours; two processes with disjoint `--actor`
sets and `--out` elsewhere halve that on 2 cores, and a last run with all actors then only writes the report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from lipsync_core.evaluate import dub_other_speech, reconstruct, sync_row
from lipsync_core.media.audio import load_audio, log_mel, mel_windows
from lipsync_core.media.writers import open_writer
from lipsync_core.models.actor import DEFAULT_MODEL, file_sha256, load_generator
from lipsync_core.models.checkpoint import file_metadata, load_checkpoint, read_metadata
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train.data import CACHE_FPS, PreparedClip, load_cache
from lipsync_core.train.personalize import personalize

ROOT = Path(__file__).resolve().parents[1]
OTHER_SPEECH = ["AP0827_DeepGram_audio_harvard.flac", "FuxiVirtualH_samples_audios_AdamSchiff_0.flac"]
SPEECH_START_S = 1.0  # skip the lead-in silence of the speech files
IMAGE_KEYS = ("psnr_lower_face", "ssim_lower_face", "lmd")
CARD_SYNC_KEYS = ("lse_c", "offset_accuracy", "mouth_loudness_r")  # the card's sync on the pool's measuring speech
# SyncNet's scores (what the regularizer optimises) and the model-free mouth/loudness r, against the new
# speech and against the clip's own audio (what should not show through).
SYNC_KEYS = ("lse_c", "lse_d", "offset_accuracy", "mouth_loudness_r", "mouth_loudness_r_original")


def other_speech(audio_dir: Path, clip: PreparedClip, width: int) -> list[np.ndarray]:
    """Per speech file: the mel windows of a stretch as long as the clip."""
    times = SPEECH_START_S + np.arange(len(clip)) / CACHE_FPS
    return [mel_windows(log_mel(load_audio(audio_dir / name)), times, width) for name in OTHER_SPEECH]


def cross_audio_sync(model, syncnet: SyncNet, clip: PreparedClip, speech: list[np.ndarray]) -> dict:
    """Sync of the whole clip dubbed with each stretch of other speech, averaged."""
    scores = []
    for mels in speech:
        dub = dub_other_speech(model, clip, mels)
        scores.append(sync_row(syncnet, dub.frames, dub.lips, dub.mels, dub.valid) | {"mouth_loudness_r_original": dub.r_original()})
    return {k: float(np.mean([s[k] for s in scores])) for k in SYNC_KEYS}


def run_variant(clip, base, syncnet_path, syncnet, speech, work: Path, rank, regularizer: bool, steps: int, eval_every: int,
                lr: float) -> dict:
    name = f"{clip.name}_rank{'full' if rank is None else rank}_{'reg' if regularizer else 'noreg'}_{steps}steps_lr{lr:g}"
    actor, curve_path = work / f"{name}.safetensors", work / f"{name}.curve.jsonl"
    if not actor.exists():

        def on_eval(step, model):
            with curve_path.open("a") as f:
                f.write(json.dumps({"step": step, **cross_audio_sync(model, syncnet, clip, speech)}) + "\n")

        if not (work / f"{name}.personalize" / "state.safetensors").exists():
            curve_path.unlink(missing_ok=True)
        personalize([clip], base, actor, syncnet_path=syncnet_path, steps=steps, rank=rank, sync_regularizer=regularizer, lr=lr,
                    eval_every=eval_every, patience=None, on_eval=on_eval)
    curve = {r["step"]: r for r in map(json.loads, curve_path.read_text().splitlines())}
    log = [json.loads(line) for line in (work / f"{name}.personalize" / "log.jsonl").read_text().splitlines()]
    held_l1 = {r["step"]: r["held_l1"] for r in log if "held_l1" in r}
    facts = json.loads(file_metadata(actor)["facts"])
    return {"actor": name, "rank": facts["rank"], "regularizer": regularizer, "bytes": actor.stat().st_size,
            "seconds": facts["seconds"], "best_step": facts["best_step"], "measures": facts["measures"],
            "curve": [{**curve[s], "held_l1": held_l1.get(s)} for s in sorted(curve)]}


def side_by_side(path: Path, clip: PreparedClip, models: dict, mels: np.ndarray, audio: Path) -> None:
    """The whole clip dubbed with other speech (`mels` of `audio`), one labelled panel per model, with that speech."""
    ref = int(np.flatnonzero(clip.valid)[0])
    panels = [reconstruct(model, clip, mels, ref) for model in models.values()]
    size = 2 * clip.crops.shape[1]
    with open_writer(path, CACHE_FPS, size * len(panels), size, audio=audio, audio_offset_s=SPEECH_START_S) as writer:
        for i in range(len(clip)):
            row = np.hstack([cv2.resize(p[i], (size, size), interpolation=cv2.INTER_CUBIC) for p in panels])
            for j, label in enumerate(models):
                cv2.putText(row, label, (j * size + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(row)


def variant_label(r: dict) -> str:
    return f"rank {r['rank']}, {'with' if r['regularizer'] else 'without'} regularizer"


def summarize(results: list[dict]) -> dict:
    """Means over actors per variant: held-out image measures, card sync, cross-audio sync at step 0 / best / last."""
    out = {}
    for label in dict.fromkeys(variant_label(r) for r in results):
        runs = [r for r in results if variant_label(r) == label]
        mean = lambda values: float(np.mean(values))
        at = lambda r, step: next(p for p in r["curve"] if p["step"] == step)
        out[label] = {
            "actors": len(runs),
            "file_kib": mean([r["bytes"] / 1024 for r in runs]),
            "minutes": mean([r["seconds"] / 60 for r in runs]),
            "best_step": mean([r["best_step"] for r in runs]),
            **{f"zero_shot_{k}": mean([r["measures"]["zero_shot"]["own_audio"][k] for r in runs]) for k in IMAGE_KEYS},
            **{f"personalized_{k}": mean([r["measures"]["personalized"]["own_audio"][k] for r in runs]) for k in IMAGE_KEYS},
            **{f"{m}_other_{k}": mean([r["measures"][m]["other_audio"][k] for r in runs])
               for m in ("zero_shot", "personalized") for k in CARD_SYNC_KEYS},
            **{f"cross_zero_shot_{k}": mean([at(r, 0)[k] for r in runs]) for k in SYNC_KEYS},
            **{f"cross_best_{k}": mean([at(r, r["best_step"])[k] for r in runs]) for k in SYNC_KEYS},
            **{f"cross_last_{k}": mean([r["curve"][-1][k] for r in runs]) for k in SYNC_KEYS},
        }
    return out


def markdown(summary: dict) -> str:
    keys = list(next(iter(summary.values())))
    lines = ["| measure | " + " | ".join(summary) + " |", "|---" * (len(summary) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(f"{row[k]:.3f}" for row in summary.values()) + " |" for k in keys]
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("mouth_loudness_r", "mouth opening / loudness r of the new speech (no model; higher: follows it)"),
              ("mouth_loudness_r_original", "the same mouths against the clip's own audio (~0: the original does not show)"),
              ("lse_c", "LSE-C on the new speech (our SyncNet, which R_sync uses)"),
              ("held_l1", "held-out L1, own audio (lower: closer to the actor)"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(23, 4.2))
    labels = list(dict.fromkeys(variant_label(r) for r in results))
    for label, colour in zip(labels, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        runs = [r for r in results if variant_label(r) == label]
        steps = [p["step"] for p in runs[0]["curve"]]
        for ax, (key, _) in zip(axes, panels):
            ax.plot(steps, np.mean([[p[key] for p in r["curve"]] for r in runs], axis=0), marker=".", color=colour, label=label)
        for r in runs:  # each actor: the mean can hide one that drifts
            axes[-1].plot(steps, [p["mouth_loudness_r"] for p in r["curve"]], color=colour, alpha=0.6, lw=1)
    titles = [title for _, title in panels] + ["mouth / loudness r of the new speech, per actor"]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("adaptation step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Personalization of {len({r['actor'].split('_rank')[0] for r in results})} dev actors, dubbed with "
                 "speech they never said: means over the actors; step 0 is the zero-shot model", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def drift_lines(summary: dict) -> str:
    """Cross-audio mouth/loudness r at the best and the last step relative to zero-shot, per variant."""
    lines = []
    for label, row in summary.items():
        zero = row["cross_zero_shot_mouth_loudness_r"]
        lines.append(f"- {label}: r with the new speech {zero:.3f} zero-shot, {row['cross_best_mouth_loudness_r']:.3f} at the "
                     f"best held-out step ({row['cross_best_mouth_loudness_r'] / zero - 1:+.0%}), "
                     f"{row['cross_last_mouth_loudness_r']:.3f} at the last ({row['cross_last_mouth_loudness_r'] / zero - 1:+.0%}); "
                     f"against the clip's own audio {row['cross_zero_shot_mouth_loudness_r_original']:.3f} -> "
                     f"{row['cross_last_mouth_loudness_r_original']:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=DEFAULT_MODEL, help="base model (default: the bundled one)")
    parser.add_argument("--syncnet", type=Path, help="SyncNet file when the base model holds none")
    parser.add_argument("--cache", type=Path, default=ROOT / "cache" / "train")
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "data" / "audio", help="folder of the other speech")
    parser.add_argument("--actors", type=int, help="only the first N dev clips (default: all)")
    parser.add_argument("--actor", action="append", help="only dev clips whose name holds this (repeatable)")
    parser.add_argument("--lr", type=float, default=1e-3, help="personalization learning rate (default: 1e-3; "
                        "`lipsync personalize` uses 3e-4: a higher one provokes the drift the regularizer prevents)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=30)
    parser.add_argument("--rank", action="append", help="ranks to compare with the regularizer (default: 8); "
                        "the first one is also run without it")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "personalize_report")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    ranks = [None if r == "full" else int(r) for r in (args.rank or ["8"])]
    variants = [(rank, True) for rank in ranks] + [(ranks[0], False)]
    syncnet = SyncNet(read_metadata(args.base)[0])
    load_checkpoint(args.syncnet or args.base, {"syncnet": syncnet})
    syncnet.eval()
    clips = [c for c in load_cache(args.cache, "dev", 25) if not args.actor or any(a in c.name for a in args.actor)][: args.actors]
    work = args.work / file_sha256(args.base)[:12]  # runs of another base model are never reused
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for clip in clips:
        speech = other_speech(args.audio, clip, syncnet.config.mel_window)
        for rank, regularizer in variants:
            results.append(run_variant(clip, args.base, args.syncnet, syncnet, speech, work, rank, regularizer, args.steps, args.eval_every,
                                       args.lr))
    summary = summarize(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "personalize_report.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    table = markdown(summary)
    base_facts = read_metadata(args.base)[1]
    (args.out / "personalize_report.md").write_text(
        f"# Personalization report\n\nBase model `{args.base.name}` (trained {base_facts.get('total_steps', base_facts.get('step', '?'))} steps), "
        f"{len(clips)} dev actors "
        f"({', '.join(c.name for c in clips)}), {args.steps} steps at learning rate {args.lr:g}. `zero_shot_*` / `personalized_*`: held-out "
        "footage, own audio (personalized = best held-out step); `*_other_*`: the same frames dubbed with the speech "
        "pool's measuring file (the actor file's card). `cross_*`: the whole clip dubbed with speech from "
        f"{args.audio} ({', '.join(OTHER_SPEECH)}), at step 0 (zero-shot), the best held-out step and the last step. "
        "Sync scores are our SyncNet's (the one the regularizer's R_sync uses); mouth_loudness_r (mouth opening against "
        "the loudness of the new speech) needs no model, and mouth_loudness_r_original measures the same mouths against "
        "the clip's own audio (what should not show through a dub). The regularizer: R_sync (lambda 0.1) and the mouth "
        "term (a reader fitted on the actor's frames must find the pool speaker's mouth; lambda 1); see "
        "lipsync_core/train/personalize.py.\n\n" + drift_lines(summary) + "\n\n" + table + "\n")
    plot(results, args.out / "personalize_sync_vs_steps.png")
    first = [r for r in results if r["actor"].startswith(clips[0].name)]
    models = {"zero-shot": load_generator(args.base)[0]}
    models |= {variant_label(r): load_generator(work / f"{r['actor']}.safetensors", args.base)[0] for r in first}
    mels = other_speech(args.audio, clips[0], syncnet.config.mel_window)[0]
    side_by_side(args.out / "personalize_side_by_side.mp4", clips[0], models, mels, args.audio / OTHER_SPEECH[0])
    print(table)


if __name__ == "__main__":
    main()
