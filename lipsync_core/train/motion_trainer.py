"""`lipsync train motion`: the motion model (models/motion.py) on the prepared clips' own audio and landmarks.

Targets: each frame's mouth shape (lip and jaw points in the aligned crop) as offsets from its clip's rest
shape, in a basis fitted on the train split. The audio is augmented every draw, in the log-mel domain
where the features are computed: level (+-12 dB), a random EQ curve, a shift of the mel bands (another
voice's formants), noise at 10-44 dB under the speech, and speed (0.85-1.15x, the targets' times scaled
with it). Early-stopped on the dev split's per-clip correlation of predicted and true mouth opening.
Resumable (run_dir/state.safetensors); the best weights go to run_dir/motion.safetensors. Under torchrun `batch` is
per process: N processes of batch B train as one process of batch N*B (`distributed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..errors import LipSyncError
from ..media.audio import MEL_FPS, MEL_SCALE, MEL_SILENCE, N_MELS
from ..media.writers import refuse_inputs
from ..metrics import pearson
from ..models.motion import (MotionConfig, MotionEnsemble, MotionModel, MotionNet, at_times, gate, load_motion_model,
                             save_motion_model, speech_features)
from ..motion.shape import ShapeBasis, crop_points, opening, rest_shape
from .data import CACHE_FPS, PreparedClip
from .distributed import batch_mean, from_rank0, join, leave, process_mean, split_randomness
from .log import RunLog
from .state import EMA, load_state, save_state

SEGMENT = 200  # mel frames per training segment (2.5 s)
EDGE = 24  # frames at each end of a segment whose targets are not used (their context is cut)
SPEED = (0.85, 1.15)
OPENING_WEIGHT = 2.0
# 1 - Pearson r of predicted and true opening over each segment. Squared errors alone let a hedging regression
# follow loudness (and sit near the mean); what a viewer reads, and what the actor's style rescales anyway, is
# whether the mouth opens when the real one does. Dev split (`lipsync train motion-card`), seed 0: own audio
# median opening r 0.43 -> 0.47, other speech 0.47 -> 0.51; seed 1: 0.42 and 0.50 (so the steady gain is other speech).
CORRELATION_WEIGHT = 2.0
EMA_DECAY = 0.995
CONTEXT = 320  # mel frames (4 s) each side of a segment that its features' statistics see


@dataclass
class MotionClip:
    """One prepared clip as the motion trainer uses it."""

    name: str
    mel: np.ndarray  # (M, 80) its own audio
    points: np.ndarray  # (N, P, 2) mouth shape per frame, CROP_UNITS
    rest: np.ndarray  # (P, 2)
    valid: np.ndarray  # (N,)

    @classmethod
    def of(cls, clip: PreparedClip) -> MotionClip:
        points = crop_points(clip.landmarks, clip.meta["size"])
        return cls(clip.name, clip.mel, points, rest_shape(points, clip.valid), clip.valid.copy())

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.points)) / CACHE_FPS

    def offsets(self) -> np.ndarray:
        return np.nan_to_num(self.points - self.rest)


def augment(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random level, EQ, formant shift and noise on a (M, 80) log-mel."""
    m = mel + rng.uniform(-1.0, 1.0)
    bands = np.linspace(0, np.pi, N_MELS)
    m = m + sum(rng.uniform(-0.3, 0.3) * np.cos(k * bands + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3))
    shift = int(rng.integers(-2, 3))
    if shift > 0:
        m = np.concatenate([np.repeat(m[:, :1], shift, 1), m[:, :-shift]], axis=1)
    elif shift < 0:
        m = np.concatenate([m[:, -shift:], np.repeat(m[:, -1:], -shift, 1)], axis=1)
    if rng.random() < 0.6:
        levels = m.mean(axis=1)
        noise_level = np.percentile(levels, 95) - rng.uniform(0.8, 3.5)
        tilt = rng.uniform(-0.6, 0.6) * np.linspace(-1, 1, N_MELS)
        noise = 10 ** ((noise_level + tilt + 4) / MEL_SCALE - 5) * rng.rayleigh(1 / np.sqrt(np.pi / 2), m.shape)
        m = (np.log10(10 ** ((np.clip(m, -4, 4) + 4) / MEL_SCALE - 5) + noise) + 5) * MEL_SCALE - 4
    return np.clip(m, -4.0, 4.0).astype(np.float32)


class SegmentSampler:
    """Draws augmented training segments: features (B, 81, SEGMENT), target times (B, N) in seconds from the
    segment's start, targets (B, N, K) in basis-scale units, and a mask (B, N) of the targets that count."""

    def __init__(self, clips: list[MotionClip], basis: ShapeBasis, seed: int):
        self.clips = clips
        self.targets = [basis.encode(c.offsets()) / basis.scale for c in clips]
        lengths = np.array([len(c.points) for c in clips], np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def batch(self, size: int, part: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
        """part (rank, processes): of the `size` segments this process makes its own even share; samplers of the same
        seed and state hand the processes disjoint shares."""
        # One seed per segment: a process draws only its share's segments, each as the whole batch has it.
        seeds = self.rng.integers(2**63, size=size)
        rank, processes = part
        share = size // processes
        features, times, targets, masks = [], [], [], []
        for seed in seeds[rank * share : (rank + 1) * share]:
            rng = np.random.default_rng(seed)
            ci = int(rng.choice(len(self.clips), p=self.weights))
            clip = self.clips[ci]
            speed = rng.uniform(*SPEED)
            span = SEGMENT * speed
            # A segment may reach a little past the clip's ends, where the padding is silence. The features'
            # statistics come from the segment and CONTEXT mel frames around it (not the whole clip: cheaper,
            # and a dub's own statistics vary about as much).
            frame_pos = SEGMENT + clip.times * MEL_FPS
            total = len(clip.mel) + 2 * SEGMENT
            start = rng.uniform(max(0.0, frame_pos[0] - span / 2), max(1.0, min(total - span - 2, frame_pos[-1] - span / 2)))
            lo_region = max(0, int(start) - CONTEXT)
            hi_region = min(total, int(start + span) + 2 + CONTEXT)
            mel = np.pad(clip.mel, ((SEGMENT, SEGMENT), (0, 0)), constant_values=MEL_SILENCE)[lo_region:hi_region]
            feats = speech_features(augment(mel, rng))
            source = start - lo_region + np.arange(SEGMENT) * speed
            lo = np.minimum(np.floor(source).astype(int), len(feats) - 1)
            frac = (source - np.floor(source))[:, None]
            features.append((feats[lo] * (1 - frac) + feats[np.minimum(lo + 1, len(feats) - 1)] * frac).T)
            out = (frame_pos - start) / speed
            inside = np.flatnonzero((out >= 0) & (out <= SEGMENT - 1))
            out = out[inside]
            times.append(out / MEL_FPS)
            targets.append(self.targets[ci][inside])
            masks.append(clip.valid[inside] & (out >= EDGE) & (out <= SEGMENT - 1 - EDGE))
        n = max(len(t) for t in times)

        def stack(arrays, fill):
            return np.stack([np.concatenate([a, np.full((n - len(a),) + a.shape[1:], fill, a.dtype)]) for a in arrays])

        return {
            "features": torch.from_numpy(np.stack(features).astype(np.float32)),
            "times": torch.from_numpy(stack(times, 0.0).astype(np.float32)),
            "targets": torch.from_numpy(stack(targets, 0.0).astype(np.float32)),
            "mask": torch.from_numpy(stack(masks, False)),
        }


def motion_loss(net: torch.nn.Module, batch: dict, weights: torch.Tensor, open_vector: torch.Tensor, world: int = 1) -> torch.Tensor:
    """Weighted MSE of the coefficients and of the mouth opening they make (`open_vector`: coefficients ->
    opening in units of its typical spread; the opening is what a viewer reads sync from), each also on the
    frame-to-frame change (articulation, not only level), and the opening's correlation over each segment.
    `batch`: one of `world` processes' shares; averaged over the processes, the losses are the whole batch's."""
    predicted = at_times(net(batch["features"]), batch["times"])
    target = batch["targets"]
    mask = batch["mask"].float()
    both = mask[:, 1:] * mask[:, :-1]

    def masked(error, m):
        # Over the mean count of the processes, not this share's own: shares count different numbers of frames.
        return (error * m).sum() / process_mean(m.sum(), world).clamp(min=1)

    shape = masked(((predicted - target) ** 2 * weights).mean(-1), mask)
    shape_velocity = masked(((predicted.diff(dim=1) - target.diff(dim=1)) ** 2 * weights).mean(-1), both)
    gap, true_gap = predicted @ open_vector, target @ open_vector
    gap_error = masked((gap - true_gap) ** 2, mask)
    gap_velocity = masked((gap.diff(dim=1) - true_gap.diff(dim=1)) ** 2, both)
    r, moving = segment_correlation(gap, true_gap, mask)
    decorrelation = ((1 - r) * moving).sum() / process_mean(moving.sum(), world).clamp(min=1)
    return shape + shape_velocity + OPENING_WEIGHT * (gap_error + gap_velocity) + CORRELATION_WEIGHT * decorrelation


def segment_correlation(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) Pearson r of x and y (B, N) over each row's `mask`ed frames, and (B,) 1.0 where y moves there at all
    (a row of a held mouth has no correlation to speak of)."""
    count = mask.sum(1, keepdim=True).clamp(min=2)
    xc = (x - (x * mask).sum(1, keepdim=True) / count) * mask
    yc = (y - (y * mask).sum(1, keepdim=True) / count) * mask
    spread = (xc.pow(2).sum(1) * yc.pow(2).sum(1)).sqrt()
    return (xc * yc).sum(1) / (spread + 1e-6), (yc.pow(2).sum(1) > 1e-3).float()


def fit_basis(clips: list[MotionClip], components: int) -> ShapeBasis:
    offsets = np.concatenate([c.offsets()[c.valid] for c in clips])
    rests = np.concatenate([np.repeat(c.rest[None], c.valid.sum(), 0) for c in clips])
    return ShapeBasis.fit(offsets, rests, components)


def opening_vector(basis: ShapeBasis, clips: list[MotionClip]) -> np.ndarray:
    """(K,) the mouth opening (over rest) made by unit-scale coefficients, in units of the clips' opening spread."""
    unit = basis.decode(np.diag(basis.scale))  # (K, P, 2): each component at its own scale
    spread = np.concatenate([opening(c.points[c.valid]) for c in clips]).std()
    return (opening(unit) - opening(np.zeros_like(unit[0]))).astype(np.float32) / spread


def predicted_points(model: MotionModel, clip: MotionClip, gain: np.ndarray | None = None) -> np.ndarray:
    """The clip's mouth shapes as the model predicts them from its own audio (average gain by default)."""
    coefficients = model.predict(clip.mel, clip.times) * (model.gain if gain is None else gain)
    return clip.rest + model.basis.decode(coefficients)


def dev_opening_r(model: MotionModel, clips: list[MotionClip]) -> list[float]:
    """Per clip: Pearson r of predicted and true mouth opening over its face frames."""
    return [pearson(opening(predicted_points(model, c))[c.valid], opening(c.points)[c.valid]) for c in clips]


def average_gain(model: MotionModel, clips: list[MotionClip]) -> np.ndarray:
    """(K,) the average speaker's articulation: one factor on every coefficient, the spread of the true mouth
    opening over the spread of the predicted one (a regression hedges towards the mean), over the clips' face
    frames with pauses at rest as a dub has them."""
    true, predicted = [], []
    for c in clips:
        gated = model.predict(c.mel, c.times) * gate(c.mel, c.times)[:, None]
        true.append(opening(c.points)[c.valid])
        predicted.append(opening(c.rest + model.basis.decode(gated))[c.valid])
    ratio = np.concatenate(true).std() / max(np.concatenate(predicted).std(), 1e-6)
    return np.full(model.net.config.components, ratio, np.float32)


def train_motion(train: list[PreparedClip], dev: list[PreparedClip], run_dir: Path, *, steps: int = 4000,
                 batch: int = 32, lr: float = 1e-3, seed: int = 0, eval_every: int = 100, patience: int = 10,
                 config: MotionConfig = MotionConfig()) -> Path:
    """Train until `steps` or until the dev median opening r has not improved for `patience` evaluations.
    Writes run_dir/state.safetensors (resume point) and run_dir/motion.safetensors (best on dev)."""
    rank, world, _ = join(torch.device("cpu"))
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    train_clips, dev_clips = [MotionClip.of(c) for c in train], [MotionClip.of(c) for c in dev]
    basis = fit_basis(train_clips, config.components)  # deterministic: a resumed run fits the same one
    net = MotionNet(config)
    split_randomness(net, rank, world)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    # The averaged weights are the ones measured and shipped: on a few minutes of speech the raw weights
    # swing from one speaker's habits to another's between evaluations.
    ema = EMA(net, EMA_DECAY)
    shipped = MotionNet(config)
    sampler = SegmentSampler(train_clips, basis, seed)
    weights = torch.from_numpy(basis.scale**2 / (basis.scale**2).mean() * 0.5 + 0.5)
    open_vector = torch.from_numpy(opening_vector(basis, train_clips))
    log = RunLog(run_dir)
    state_path, best_path = run_dir / "state.safetensors", run_dir / "motion.safetensors"
    meta = {"step": 0, "best": -1.0, "since_best": 0}
    if state_path.exists():
        meta = load_state(state_path, {"motion": net}, {"motion": ema}, {"motion": opt})
        sampler.set_state(meta["sampler"])
        if rank == 0:
            log.truncate_after(meta["step"])
    trained = DistributedDataParallel(net) if world > 1 else net
    bar = tqdm(total=steps, initial=meta["step"], desc="motion", unit="step", disable=rank > 0)
    for step in range(meta["step"] + 1, steps + 1):
        net.train()
        loss = motion_loss(trained, sampler.batch(batch * world, (rank, world)), weights, open_vector, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(net)  # the same on every process: their weights are
        record = {"step": step, "time": time.time(), **batch_mean({"loss": loss}, world)}
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if step % eval_every == 0 or step == steps:
            if rank == 0:
                ema.copy_to(shipped)
                model = MotionModel(shipped, basis, np.ones(config.components, np.float32), {})
                rs = dev_opening_r(model, dev_clips)
                record["dev_opening_r"] = float(np.median(rs))
                if record["dev_opening_r"] > meta["best"]:
                    meta.update(best=record["dev_opening_r"], since_best=0)
                    model.gain = average_gain(model, train_clips)
                    model.facts = {"step": step, **run_facts(config, train_clips, dev_clips, rs)}
                    save_motion_model(best_path, model)
                else:
                    meta["since_best"] += 1
                meta.update(step=step, sampler=sampler.state())
                save_state(state_path, {"motion": net}, {"motion": ema}, {"motion": opt}, meta)
                bar.write(f"step {step}: dev median opening r {record['dev_opening_r']:.3f} (best {meta['best']:.3f})")
            meta["since_best"] = from_rank0(meta["since_best"], world)  # so that every process stops at the same step
        if rank == 0:
            log.write(record)
        if meta["since_best"] >= patience:
            if rank == 0:
                bar.write(f"early stop at step {step}: no dev improvement in {patience} evaluations")
            break
    bar.close()
    if rank == 0:
        log.plot()
    # DistributedDataParallel holds the process group: freed after it, at the return, the group's teardown can hang.
    del trained
    leave(world)
    return best_path


def ensemble_motion(paths: list[Path], train: list[PreparedClip], dev: list[PreparedClip], output: Path) -> MotionModel:
    """One motion model from several networks trained alike on this cache (`lipsync train motion` with other seeds),
    their predictions averaged with equal weights; written to `output`. They must share the config, and were trained on
    the cache's train clips (so they share the basis, which is fitted on the cache alone). The average speaker's gain
    is measured again on the training clips: an average of networks hedges more than each of them."""
    refuse_inputs(Path(output), paths)
    models = [load_motion_model(path) for path in paths]
    train_clips, dev_clips = [MotionClip.of(c) for c in train], [MotionClip.of(c) for c in dev]
    names = [c.name for c in train_clips]
    for path, model in zip(paths, models):
        if isinstance(model.net, MotionEnsemble):
            raise LipSyncError(f"{path}: is already an average of {len(model.net.members)} networks: give the files of "
                               f"the networks it averages instead")
        if model.net.config != models[0].net.config:
            raise LipSyncError(f"{path}: its network is configured otherwise than {paths[0]}'s ({model.net.config} against "
                               f"{models[0].net.config}): an average needs networks trained alike")
        if model.facts.get("train_clips") != names:
            raise LipSyncError(f"{path}: was trained on other clips than the train split of this cache: train the "
                               f"networks and average them on the same cache")
    config = models[0].net.config
    ensemble = MotionModel(MotionEnsemble([m.net for m in models]), models[0].basis, np.ones(config.components, np.float32), {})
    rs = dev_opening_r(ensemble, dev_clips)
    ensemble.gain = average_gain(ensemble, train_clips)
    member_runs = [{"file": str(path), "step": model.facts.get("step"), "dev_opening_r_median": model.facts.get("dev_opening_r_median")}
                   for path, model in zip(paths, models)]
    ensemble.facts = {"member_runs": member_runs, **run_facts(config, train_clips, dev_clips, rs)}
    save_motion_model(output, ensemble)
    return ensemble


def run_facts(config: MotionConfig, train: list[MotionClip], dev: list[MotionClip], rs: list[float]) -> dict:
    """What a motion model file says of how it was trained and how it measured on the dev clips (`rs`: each one's
    opening r)."""
    return {"dev_opening_r_median": float(np.median(rs)), "dev_opening_r": dict(zip([c.name for c in dev], rs)),
            "train_clips": [c.name for c in train], "dev_clips": [c.name for c in dev],
            "receptive_field_s": config.receptive_field_s(),
            "opening_spread": float(np.median([opening(c.points[c.valid]).std() for c in train]))}
