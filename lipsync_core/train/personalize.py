"""Per-actor personalization: StyleLipSync's unseen-face adaptation (paper section 4).

The encoders stay frozen; the decoder G is fine-tuned on windows of the actor's footage with the
generator's training losses (`generator_losses`), plus the sync regularizer on the actor rendered with
other speech, from the shipped speech pool (never from the actor's clips):
- the paper's R_sync = 1 - cos(f_v(G(actor's masked frames, codes of other speech)), f_a(other speech)),
  weighted lambda_R = 0.1, f the frozen SyncNet;
- the cross-audio mouth term (weight lambda_cross = 1): a `mouth_reader.MouthReader` fitted on the
  actor's own frames at the start of the run must find, on those renders, the mouth the pool's speaker
  made (the pool ships it) on the actor's resting mouth.
Why both: fine-tuning on one clip teaches the decoder that clip's pairing of head motion and mouth (the
cue the generator's cross-audio loss fights, see mouth_reader.py), and a dub drifts toward the
original performance. R_sync alone, with our SyncNet, did not stop that (on the dev actor
astorfi_data_sample_video, lr 1e-3, mouth/loudness r on other speech fell 0.35 -> 0.1-0.2 with and
without it); the mouth term names the mouth the new speech needs.

What is trained, by `rank`:
- r > 0 (default 8): every small decoder tensor in full (biases, style affines, noise strengths, toRGB,
  SaMF, the constant input) and a rank-r update of each 3x3 styled conv weight;
- 0: the small tensors only;
- None ("full"): the whole decoder.
Only what changed is written to the actor file (see models/actor.py).

The last ~20 % of each clip (on the 0.2 s grid) is held out: the objective there picks the best step and
stops the run early, and the card's measures are taken there, zero-shot vs personalized (sync on other
speech with the pool's last file, which training never uses). Resumable:
`<out stem>.personalize/` beside the output holds the state (saved at every held-out evaluation) and
the log; the actor file is written once, atomically, at the end, and the state is then removed.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm import tqdm

from ..appearance.actor_clips import clip_record
from ..errors import LipSyncError, ModelError
from ..evaluate import evaluate_clip
from ..media.audio import MEL_FPS
from ..media.frames import open_plate
from ..models.actor import ACTOR_VERSION, apply_actor, file_sha256, load_generator, low_rank_delta, save_actor
from ..models.checkpoint import file_metadata, load_checkpoint, read_metadata
from ..models.config import ModelConfig
from ..models.stylelipsync import StyleLipSync, masked_input
from ..models.syncnet import SyncNet
from .data import CACHE_FPS, PreparedClip, WindowSampler
from .generator_trainer import WINDOW, generator_losses
from .log import RunLog
from .losses import sync_loss
from .mouth_reader import MouthReader, cross_audio_loss, load_mouth_reader, train_mouth_reader
from .prepare import ClipSource, prepare_clip
from .speech_pool import SPEECH_DIR, Speech, SpeechPool, load_speech_pool
from .state import load_state, save_state

HOLDOUT = 0.2  # share of each clip held out for early stopping and the card's measures
GRID = 5  # frames: cut points fall on multiples of 0.2 s, where 25 fps frames and 80/s mel frames line up
MIN_FRAMES = 25  # one second: less is not enough to learn a face from
HELD_OUT_BATCHES = (3, 4)  # fixed held-out windows evaluated at every check: 3 batches of 4
STYLED_CONV_WEIGHT = re.compile(r"blocks\.\d+\.conv[12]\.conv\.weight")
READER_STEPS = 300  # the actor's mouth reader: a few hundred frames of one face are learnt in ~15 s

EvalCallback = Callable[[int, StyleLipSync], None]  # (step, generator in eval mode)
Progress = Callable[[str, int, int, dict], None]  # (stage "reader" or "train", done, total, that step's losses)


def clip_part(clip: PreparedClip, start: int, stop: int) -> PreparedClip:
    """Frames [start, stop) of a prepared clip as a clip of its own (time 0 at `start`).
    `start` must lie on the 0.2 s grid so that the mel can be cut exactly. Like any clip, the part hears
    silence before its start: the audio windows of its first 0.1 s are partly silent."""
    if start % GRID:
        raise ValueError(f"clip part must start on a multiple of {GRID} frames, not {start}")
    mel_start = start * MEL_FPS // int(CACHE_FPS)
    sl = slice(start, stop)
    return PreparedClip(f"{clip.name}[{start}:{stop}]", clip.crops[sl], clip.masks[sl], clip.landmarks[sl],
                        clip.valid[sl], clip.mel[mel_start:], clip.meta | {"frames": [start, stop]})


def prepare_footage(path: Path, audio: Path | None, frames: tuple[int, int] | None, size: int) -> PreparedClip:
    """An actor's clip prepared for training (conformed to 25 fps) with `audio` (None: the clip's own
    track), cut to `frames` (first, last in the plate's numbering) when given."""
    clip = prepare_clip(ClipSource(path, audio), size)
    clip.meta["plate_frames"] = frames  # for the actor file's record of its footage (appearance/actor_clips.py)
    if frames is None:
        return clip
    with open_plate(path) as plate:
        info = plate.info
    # Conformed frame i shows time i / 25; the start is rounded up to the 0.2 s grid to stay inside the range.
    start = math.ceil((frames[0] - info.first) / info.fps * CACHE_FPS / GRID) * GRID
    stop = min(len(clip), math.floor((frames[1] + 1 - info.first) / info.fps * CACHE_FPS))
    if stop <= start:
        raise LipSyncError(f"{path}: frames {frames[0]}-{frames[1]} are outside the clip ({info.first}-{info.last})")
    return clip_part(clip, start, stop)


def split_footage(clip: PreparedClip, holdout: float = HOLDOUT) -> tuple[PreparedClip, PreparedClip]:
    """(first part to train on, last ~`holdout` share held out), cut on the 0.2 s grid."""
    n = len(clip)
    if clip.valid.sum() < MIN_FRAMES:
        raise LipSyncError(f"{clip.name}: a face in only {clip.valid.sum()} frames; personalization needs at least "
                           f"{MIN_FRAMES} ({MIN_FRAMES / CACHE_FPS:.0f} s) per clip")
    held = max(2 * GRID, int(round(n * holdout / GRID)) * GRID)
    cut = (n - held) // GRID * GRID
    return clip_part(clip, 0, cut), clip_part(clip, cut, n)


class LowRank(nn.Module):
    """Parametrization W -> W + up @ down. `up` starts at zero, so training starts from the base model."""

    def __init__(self, weight: torch.Tensor, rank: int):
        super().__init__()
        self.up = nn.Parameter(torch.zeros(weight.shape[0], rank))
        self.down = nn.Parameter(torch.randn(rank, weight[0].numel()) / math.sqrt(rank))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + low_rank_delta(self.up, self.down, weight.shape)


def make_trainable(model: StyleLipSync, rank: int | None) -> Callable[[], dict[str, torch.Tensor]]:
    """Freeze all but the decoder parts `rank` names (see the module doc); returns a function giving the
    actor tensors (`set.*`, `low_rank.*`) of the model's current weights."""
    model.requires_grad_(False)
    whole = {f"decoder.{n}": p for n, p in model.decoder.named_parameters()
             if rank is None or not STYLED_CONV_WEIGHT.fullmatch(n)}
    for p in whole.values():
        p.requires_grad_(True)
    low_rank = {}
    if rank:
        for name, module in model.decoder.named_modules():
            if STYLED_CONV_WEIGHT.fullmatch(f"{name}.weight"):
                low_rank[f"decoder.{name}.weight"] = LowRank(module.weight, rank)
                parametrize.register_parametrization(module, "weight", low_rank[f"decoder.{name}.weight"])

    def actor_tensors() -> dict[str, torch.Tensor]:
        tensors = {f"set.{n}": p.detach().clone() for n, p in whole.items()}
        for n, factors in low_rank.items():
            tensors[f"low_rank.{n}.up"] = factors.up.detach().clone()
            tensors[f"low_rank.{n}.down"] = factors.down.detach().clone()
        return tensors

    return actor_tensors


OtherSpeech = tuple[torch.Tensor, torch.Tensor]  # pool speech: mel windows (B, T, W, n_mels), its mouth (B, T, 2)


def objective(model: StyleLipSync, syncnet: SyncNet, batch: dict, other: OtherSpeech | None, reader: MouthReader | None,
              lambda_rec: float, lambda_sync: float, lambda_reg: float, lambda_cross: float) -> dict:
    """The generator's training losses on the actor's windows, plus with `other` (speech from the pool)
    the regularizer: lambda_R * R_sync ('regularizer') + lambda_cross * the mouth term ('cross')."""
    losses = generator_losses(model, syncnet, batch, lambda_rec, lambda_sync)
    if other is not None:
        mels, mouth = other
        rendered = model(masked_input(batch["frames"], batch["masks"]), batch["masks"], batch["ref"], mels)
        losses["regularizer"] = sync_loss(syncnet.similarity(rendered, mels[:, WINDOW // 2]))
        losses["cross"] = cross_audio_loss(reader, rendered, batch["mouth_rest"][:, None] + mouth)
        losses["loss"] = losses["loss"] + lambda_reg * losses["regularizer"] + lambda_cross * losses["cross"]
    return losses


class Snapshot:
    """The best weights so far. save_state/load_state keep it in the state file like an EMA (`.shadow`)."""

    def __init__(self, model: nn.Module):
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}


def personalize(
    clips: list[PreparedClip],
    base: Path,
    out: Path,
    *,
    syncnet_path: Path | None = None,
    steps: int = 200,
    rank: int | None = 8,
    sync_regularizer: bool = True,
    lambda_reg: float = 0.1,
    lambda_cross: float = 1.0,
    reader_steps: int = READER_STEPS,
    lambda_rec: float = 10.0,
    lambda_sync: float = 0.1,
    lr: float = 3e-4,
    batch: int = 2,
    eval_every: int = 20,
    patience: int | None = 4,
    measure: bool = True,
    seed: int = 0,
    speech_dir: Path = SPEECH_DIR,
    device: torch.device = torch.device("cpu"),
    on_eval: EvalCallback | None = None,
    progress: Progress | None = None,
) -> dict:
    """Personalize the base model to the actor in `clips` and write the actor file `out`. Returns its facts.

    `patience`: stop after this many held-out checks without improvement (None: run all steps).
    `measure`: put zero-shot vs personalized measures of the held-out footage in the facts.
    `on_eval`: called at every held-out check with the current generator (for curves over steps).
    `progress`: called after every step (of the mouth reader's fit, then of the fine-tuning); without it
    progress bars show on stderr.
    """
    started = time.time()
    base, out = Path(base), Path(out)
    run_dir = out.with_name(f"{out.stem}.personalize")
    state_path = run_dir / "state.safetensors"
    torch.manual_seed(seed)

    base_config(base)
    model, _ = load_generator(base)
    syncnet = _load_syncnet(syncnet_path or base, model).to(device)
    actor_tensors = make_trainable(model, rank)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=lr, betas=(0.5, 0.99))
    weights = (lambda_rec, lambda_sync, lambda_reg, lambda_cross)  # objective's loss weights

    parts = [split_footage(c) for c in clips]
    # The clips as they are now, recorded before the run: the actor file lends them to `dub --actor` as footage.
    recorded = [_footage_record(c, out) for c in clips]
    train_parts, held_parts = [p[0] for p in parts], [p[1] for p in parts]
    width = model.config.mel_window
    sampler = WindowSampler(train_parts, WINDOW, width, seed)
    # The pool's last file is kept out of training: the card measures sync on other speech with it.
    speech = load_speech_pool(width, speech_dir)
    if len(speech) < 2:
        raise LipSyncError(f"{speech_dir}: the speech pool needs at least two files (one is kept for measuring)")
    *train_speech, measure_speech = speech.values()
    pool = SpeechPool(train_speech, seed + 1) if sync_regularizer else None
    held_out = _held_out_batches(held_parts, train_speech if sync_regularizer else None, width, seed)
    # Made once the footage and speech have passed their checks: footage too short leaves no empty folder.
    run_dir.mkdir(parents=True, exist_ok=True)
    reader, reader_facts = None, {}
    if sync_regularizer:
        reader_path = run_dir / "mouth_reader.safetensors"
        if not (state_path.exists() and reader_path.exists()):  # a resumed run goes on with the reader it began with
            train_mouth_reader(train_parts, held_parts, reader_path, model.config, steps=reader_steps, seed=seed, device=device,
                               progress=(lambda done, total: progress("reader", done, total, {})) if progress else None)
        reader = load_mouth_reader(reader_path, model.config, device)
        reader_facts = {k: v for k, v in read_metadata(reader_path)[1].items() if k.startswith("dev_")}

    run = {"base_sha256": file_sha256(base), "clips": [[c.name, len(c)] for c in clips], "rank": rank,
           "sync_regularizer": sync_regularizer, "lambda_reg": lambda_reg, "lambda_cross": lambda_cross,
           "lr": lr, "batch": batch, "seed": seed}
    best = Snapshot(model)
    log = RunLog(run_dir)
    meta = {"step": 0, "run": run, "seconds": 0.0}
    if state_path.exists():
        meta = load_state(state_path, {"generator": model}, {"best": best}, {"generator": opt})
        if meta["run"] != run:
            differ = ", ".join(k for k in run if meta["run"].get(k) != run[k])
            raise LipSyncError(f"{state_path}: left by a different personalization run ({differ} differ); "
                               "delete the folder to start over")
        sampler.set_state(meta["sampler"])
        if pool is not None:
            pool.set_state(meta["pool"])
        log.truncate_after(meta["step"])
    else:
        log.path.unlink(missing_ok=True)
        score = _held_out_score(model, syncnet, reader, held_out, weights, on_eval, 0)
        meta.update(best_score=score["held_loss"], best_step=0, checks_without_gain=0, zero_shot=score)
        log.write({"step": 0, "time": time.time(), **score})

    seconds_before = meta["seconds"]  # spent by earlier sessions of this run

    def checkpoint(step: int) -> None:
        meta.update(step=step, sampler=sampler.state(), seconds=seconds_before + time.time() - started)
        if pool is not None:
            meta["pool"] = pool.state()
        save_state(state_path, {"generator": model}, {"best": best}, {"generator": opt}, meta)

    bar = tqdm(total=steps, initial=meta["step"], desc=f"personalize {out.name}", unit="step", disable=progress is not None)
    step = meta["step"]
    try:
        while step < steps and not (patience and meta["checks_without_gain"] >= patience):
            step += 1
            b = {k: v.to(device) for k, v in sampler.windows(batch).items()}
            other = tuple(t.to(device) for t in pool.windows(batch, WINDOW)) if pool is not None else None
            losses = objective(model, syncnet, b, other, reader, *weights)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            record = {"step": step, "time": time.time(), **{k: v.item() for k, v in losses.items()}}
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in ("l1", "sync", "regularizer", "cross")})
            if progress is not None:
                progress("train", step, steps, {k: v for k, v in record.items() if k not in ("step", "time")})
            if step % eval_every == 0 or step == steps:
                record.update(_held_out_score(model, syncnet, reader, held_out, weights, on_eval, step))
                if record["held_loss"] < meta["best_score"]:
                    best = Snapshot(model)
                    meta.update(best_score=record["held_loss"], best_step=step, checks_without_gain=0)
                else:
                    meta["checks_without_gain"] += 1
                log.write(record)
                checkpoint(step)
            else:
                log.write(record)
    except KeyboardInterrupt:
        bar.write(f"stopped at step {step}; progress up to the last check is kept in {run_dir}: run again to resume")
        raise
    finally:
        bar.close()

    model.load_state_dict(best.shadow)
    tensors = actor_tensors()
    seconds = seconds_before + time.time() - started
    facts = {
        "footage": [{"clip": c.name, "source": c.meta.get("source"), "frames": len(c), "seconds": len(c) / CACHE_FPS,
                     "trained_on": len(t), "held_out": len(h), **({"appearance": r} if r else {})}
                    for c, t, h, r in zip(clips, train_parts, held_parts, recorded)],
        "steps_run": step, "best_step": meta["best_step"], "seconds": round(seconds, 1),
        "rank": "full" if rank is None else rank, "sync_regularizer": sync_regularizer, "lambda_reg": lambda_reg,
        "lambda_cross": lambda_cross, "mouth_reader": reader_facts, "speech_pool": list(speech)[:-1] if sync_regularizer else [],
        "lr": lr, "batch": batch, "held_out_zero_shot": meta["zero_shot"], "held_out_best": meta["best_score"],
    }
    if measure:
        facts["measures"] = measure_held_out(base, tensors, syncnet, held_parts, measure_speech)
    save_actor(out, tensors, model.config, base, facts)
    state_path.unlink(missing_ok=True)
    (run_dir / "mouth_reader.safetensors").unlink(missing_ok=True)  # the next run of this name may see other footage
    log.plot()
    return facts


def _footage_record(clip: PreparedClip, out: Path) -> dict | None:
    """The actor file's record of the clip's source footage (appearance/actor_clips.py); None where that footage
    cannot be read now (clips from a training cache moved without it): the actor file then lends no mouths from it,
    and `dub --actor` says it records none."""
    try:
        return clip_record(Path(clip.meta["source"]), clip.meta.get("plate_frames"), out)
    except (KeyError, LipSyncError):
        return None


def base_config(base: Path) -> ModelConfig:
    """The config of the base model file to personalize; an actor model is refused."""
    if file_metadata(base).get("format") == ACTOR_VERSION:
        raise ModelError(f"{base} is an actor model: personalize from a base model (the one it was made from)")
    return read_metadata(base)[0]


def _load_syncnet(path: Path, model: StyleLipSync) -> SyncNet:
    syncnet = SyncNet(model.config)
    try:
        load_checkpoint(path, {"syncnet": syncnet}, model.config)
    except ModelError as error:
        raise ModelError(f"{error}: personalization needs the SyncNet the base model was trained with (--syncnet FILE)") from None
    return syncnet.eval().requires_grad_(False)


def _held_out_batches(held_parts: list[PreparedClip], pool_speech: list[Speech] | None, width: int, seed: int) -> list[tuple[dict, OtherSpeech | None]]:
    """Fixed held-out windows (and pool speech for the regularizer): the same at every check and on resume."""
    sampler = WindowSampler(held_parts, WINDOW, width, seed + 7)
    pool = SpeechPool(pool_speech, seed + 7) if pool_speech is not None else None
    count, batch = HELD_OUT_BATCHES
    return [(sampler.windows(batch), pool.windows(batch, WINDOW) if pool else None) for _ in range(count)]


@torch.no_grad()
def _held_out_score(model, syncnet, reader, held_out, weights, on_eval, step) -> dict:
    device = next(model.parameters()).device
    model.eval()
    totals: dict[str, float] = {}
    for b, other in held_out:
        b = {k: v.to(device) for k, v in b.items()}
        other = tuple(t.to(device) for t in other) if other is not None else None
        losses = objective(model, syncnet, b, other, reader, *weights)
        for k, v in losses.items():
            totals[f"held_{k}"] = totals.get(f"held_{k}", 0.0) + v.item() / len(held_out)
    if on_eval is not None:
        on_eval(step, model)
    model.train()
    return totals


MEASURED = ("psnr_lower_face", "ssim_lower_face", "detail_lower_face", "lmd", "lse_c", "lse_d", "offset_accuracy")


def measure_held_out(base: Path, tensors: dict[str, torch.Tensor], syncnet: SyncNet, held_parts: list[PreparedClip],
                     other: Speech) -> dict:
    """Zero-shot vs personalized on the held-out footage: image measures with the clip's own audio
    ('own_audio') and sync with other speech ('other_audio'), means over the clips."""
    zero_shot, _ = load_generator(base)
    personalized = apply_actor(load_generator(base)[0], tensors)
    syncnet = syncnet.cpu()
    out = {}
    for name, model in (("zero_shot", zero_shot), ("personalized", personalized)):
        rows = [evaluate_clip(model, syncnet, clip, other.mels) for clip in held_parts]
        out[name] = {
            "own_audio": {k: float(np.nanmean([r["model"][k] for r in rows])) for k in MEASURED},
            "other_audio": {k: float(np.nanmean([r["cross_audio"][k] for r in rows]))
                            for k in ("lse_c", "lse_d", "offset_accuracy", "mouth_loudness_r")},
        }
    return out
