"""`lipsync train model`: the StyleLipSync generator on T-frame windows with one reference frame.

Loss: lambda_rec * (mouth-weighted L1 + multi-scale structural term) + lambda_sync * (1 - cos) from a
frozen, trained SyncNet + lambda_mouth * the audio mouth read-out (`MouthReadout`) + lambda_cross * the
cross-audio loss (each window also rendered with another window's speech, its mouth read by a frozen
`mouth_reader.MouthReader` and compared with the mouth that speech was spoken with) + lambda_adv * an
adversarial term from a patch discriminator on the lower face (`discriminator.py`; off by default). Resumable; EMA
weights are what ships. With `select_speech`, every dev evaluation also dubs the dev clips with that
speech and keeps the EMA weights whose mouths follow it best (best.safetensors): the steps that fit the
training clips best are not the ones that dub other speech best, once a small set is overfitted.

Across GPUs or nodes, start it with torchrun (it reads WORLD_SIZE/RANK/LOCAL_RANK):
    torchrun --nproc_per_node=8 -m lipsync_core.cli train model --device cuda ...
`batch` is per process: N processes of batch B train as one process of batch N*B (`distributed`), and a resumed run
continues every share exactly. (The cross-audio loss pairs windows within each process's share.)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..evaluate import follows_speech
from ..models.checkpoint import load_widened, read_metadata, save_checkpoint
from ..models.config import ModelConfig
from ..models.stylelipsync import StyleLipSync, footage_input, fuse, masked_input
from ..models.syncnet import SyncNet
from .augment import colour_jitter
from .data import PreparedClip, WindowSampler
from .footage_windows import WITHHELD, footage_of
from .discriminator import PatchDiscriminator, discriminator_loss, generator_adversarial_loss, lower_face_composite
from .distributed import batch_mean, join, leave, split_randomness
from .log import RunLog
from .losses import band_losses, multiscale_structural, sync_loss, weighted_l1
from .mouth_reader import MouthReader, cross_audio_loss, cross_audio_targets, load_mouth_reader, train_mouth_reader
from .state import EMA, load_state, save_state

WINDOW = 5  # frames per training window (the paper's T)


class MouthReadout(nn.Module):
    """Training only: mouth opening and width (`data.mouth_shape`) read linearly off each frame's audio
    codes a_t. Reconstruction alone teaches the audio path slowly, since the decoder can lean on the
    reference's mouth; asking the audio codes to carry the mouth shape gives the decoder a signal
    worth following from the first steps. It does not ship: the generator's file is unchanged."""

    def __init__(self, generator: StyleLipSync):
        super().__init__()
        self.generator = generator
        config = generator.config
        self.linear = nn.Linear(config.n_codes * config.w_dim, 2)

    def forward(self, masked, mask, ref, mels, cross: bool = False, footage=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """As StyleLipSync.forward, plus the mouth read-out (B, T, 2), plus with `cross` the same windows
        rendered with the next window's speech (the pairing of `mouth_reader.cross_audio_targets`), in
        one pass with the others. The renderer's drawings are fused with `footage` (its pictures are returned)."""
        audio = self.generator.audio_codes(mels)
        mouth = self.linear(audio.flatten(2))
        if not cross:
            return self.generator.render(masked, mask, ref, audio, footage), mouth, None
        b = len(masked)
        both = self.generator.render(masked.repeat(2, 1, 1, 1, 1), mask.repeat(2, 1, 1, 1, 1), ref.repeat(2, 1, 1, 1),
                                     torch.cat([audio, audio.roll(1, 0)]),
                                     footage.repeat(2, 1, 1, 1, 1) if footage is not None else None)
        return both[:b], mouth, both[b:]


def generator_losses(model: StyleLipSync, syncnet: SyncNet | None, batch: dict, lambda_rec: float, lambda_sync: float) -> dict:
    out = model(masked_input(batch["frames"], batch["masks"]), batch["masks"], batch["ref"], batch["mels"])
    return frame_losses(out, syncnet, batch, lambda_rec, lambda_sync)


def readout_losses(readout: MouthReadout, syncnet: SyncNet | None, batch: dict, lambda_rec: float, lambda_sync: float,
                   lambda_mouth: float, reader: MouthReader | None = None, lambda_cross: float = 0.0,
                   discriminator: PatchDiscriminator | None = None, lambda_adv: float = 0.0,
                   lambda_trust: float = 0.0) -> tuple[dict, torch.Tensor | None]:
    """The generator's losses, and with a `discriminator` its frames composited into the footage (B*T, 3, S, S)
    for the discriminator's own step (None without one). For the footage path's renderer (batches with warped
    frames) the losses are its fused pictures', plus `lambda_trust` times the share of the warped frame it does not
    pass through (`distrust`)."""
    footage = footage_input(batch["warped"], batch["covered"]) if "warped" in batch else None
    out, mouth, other = readout(masked_input(batch["frames"], batch["masks"]), batch["masks"], batch["ref"], batch["mels"],
                                cross=reader is not None, footage=footage)
    alpha = None
    if footage is not None:
        out, alpha = fuse(out, footage)
        other = fuse(other, footage)[0] if other is not None else None
    losses = frame_losses(out, syncnet, batch, lambda_rec, lambda_sync)
    if alpha is not None:
        # Pass the real frame through wherever it is right: what the renderer paints instead is blurred.
        held = batch["covered"] * batch["masks"]
        losses["distrust"] = (held - alpha * batch["masks"]).sum() / held.sum().clamp(min=1.0)
        losses["loss"] = losses["loss"] + lambda_trust * losses["distrust"]
    losses["mouth"] = F.mse_loss(mouth, batch["mouth"])
    losses["loss"] = losses["loss"] + lambda_mouth * losses["mouth"]
    if reader is not None:
        losses["cross"] = cross_audio_loss(reader, other, cross_audio_targets(batch))
        losses["loss"] = losses["loss"] + lambda_cross * losses["cross"]
    fakes = None
    if discriminator is not None:
        fakes = lower_face_composite(out, batch["frames"], batch["masks"])
        losses["adversarial"] = generator_adversarial_loss(discriminator, fakes)
        losses["loss"] = losses["loss"] + lambda_adv * losses["adversarial"]
    return losses, fakes


def frame_losses(out: torch.Tensor, syncnet: SyncNet | None, batch: dict, lambda_rec: float, lambda_sync: float) -> dict:
    frames, weights = batch["frames"], batch["weights"]
    flat = dict(pred=out.flatten(0, 1), target=frames.flatten(0, 1), weight=weights.flatten(0, 1))
    if "warped" in batch:  # the footage path's renderer
        losses = band_losses(**flat)
    else:
        losses = {"l1": weighted_l1(**flat), "structural": multiscale_structural(**flat)}
    losses["loss"] = lambda_rec * sum(losses.values())
    if syncnet is not None:
        sync = sync_loss(syncnet.similarity(out, batch["mels"][:, WINDOW // 2]))
        losses["sync"] = sync
        losses["loss"] = losses["loss"] + lambda_sync * sync
    return losses


@torch.no_grad()
def dev_losses(model: MouthReadout, syncnet: SyncNet | None, sampler: WindowSampler, batches: int, lambda_rec: float,
               lambda_sync: float, lambda_mouth: float, device, reader: MouthReader | None = None, lambda_cross: float = 0.0,
               lambda_trust: float = 0.0) -> dict:
    """Losses on a fixed set of dev windows (same windows at every evaluation)."""
    state = sampler.state()
    sampler.rng = np.random.default_rng(1234)
    model.eval()
    totals: dict[str, float] = {}
    for _ in range(batches):
        b = {k: v.to(device) for k, v in sampler.windows(4).items()}
        for k, v in readout_losses(model, syncnet, b, lambda_rec, lambda_sync, lambda_mouth, reader, lambda_cross,
                                   lambda_trust=lambda_trust)[0].items():
            totals[f"dev_{k}"] = totals.get(f"dev_{k}", 0.0) + v.item() / batches
    model.train()
    sampler.set_state(state)
    return totals


def train_generator(train: list[PreparedClip], dev: list[PreparedClip], run_dir: Path, config: ModelConfig, *,
                    steps: int, syncnet_path: Path | None, batch: int = 4, lr: float = 1e-3,
                    lambda_rec: float = 10.0, lambda_sync: float = 0.1, lambda_mouth: float = 1.0, lambda_cross: float = 1.0,
                    lambda_adv: float = 0.0, lambda_trust: float = 0.5,
                    sync_start: int = 0, seed: int = 0,
                    ema_decay: float = 0.995, save_every: int = 100, eval_every: int = 500,
                    device: torch.device = torch.device("cpu"), init_from: Path | None = None,
                    select_speech: np.ndarray | None = None, reader_steps: int = 1500) -> Path:
    """Train (or continue) the generator. Writes run_dir/state.safetensors (full resume point, every
    `save_every` steps) and run_dir/model.safetensors (EMA generator + SyncNet: the shippable file).
    `sync_start`: the sync loss joins after this many steps, once the frames look like faces.
    `select_speech` (per-frame mel windows of speech, e.g. `speech_pool.joined_speech_pool`): at every
    dev evaluation, measure how the dev clips' mouths follow it (`evaluate.follows_speech`) and write
    the best so far to run_dir/best.safetensors; returns that file then. With `lambda_cross` > 0 the
    mouth reader is fitted first (`reader_steps`; run_dir/mouth_reader.safetensors, once per run folder).
    With `lambda_adv` > 0 a patch discriminator trains alongside (its weights and Adam moments in the state).
    A `footage` config trains the footage path's renderer: every window carries frames of its clip warped onto it
    (`footage_windows`, kept in run_dir/footage); `init_from` may then be a single-reference generator of the same
    numbers, whose weights it starts from (`models.checkpoint.load_widened`)."""
    if config.footage and select_speech is not None:
        raise ValueError("the footage path's renderer dubs over warped frames of its clips: select_speech is for generators")
    rank, world, device = join(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    reader = None
    if lambda_cross > 0:
        reader_path = run_dir / "mouth_reader.safetensors"
        if rank == 0 and not reader_path.exists():
            print(f"mouth reader: {train_mouth_reader(train, dev, reader_path, config, steps=reader_steps, seed=seed, device=device)}")
        if world > 1:
            dist.barrier()
        reader = load_mouth_reader(reader_path, config, device)
    torch.manual_seed(seed)
    model = StyleLipSync(config).to(device)
    syncnet = None
    if syncnet_path is not None:
        syncnet = SyncNet(config).to(device)
        load_widened(syncnet_path, "syncnet", syncnet, config)
        syncnet.eval().requires_grad_(False)
    if init_from is not None:
        load_widened(init_from, "generator", model, config)
    readout = MouthReadout(model).to(device)
    opt = torch.optim.Adam(readout.parameters(), lr=lr, betas=(0.5, 0.99))
    modules, optimizers = {"generator": readout}, {"generator": opt}
    discriminator = None
    if lambda_adv > 0:
        discriminator = PatchDiscriminator().to(device)
        modules["discriminator"] = discriminator
        optimizers["discriminator"] = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.99))
    ema = EMA(model, ema_decay)
    split_randomness(model, rank, world)
    footage = dev_footage = None
    if config.footage:
        footage = footage_of(train, seed, run_dir / "footage")
        dev_footage = footage_of(dev, seed, run_dir / "footage")
    sampler = WindowSampler(train, WINDOW, config.mel_window, seed, footage=footage, withheld=WITHHELD)
    dev_sampler = WindowSampler(dev, WINDOW, config.mel_window, seed, footage=dev_footage)
    log = RunLog(run_dir)
    state_path, model_path, best_path = (run_dir / name for name in ("state.safetensors", "model.safetensors", "best.safetensors"))
    shipped = StyleLipSync(config)  # built before the RNG state is restored: building draws random numbers
    meta = {"step": 0}
    # The model file says how it was made, counting the runs it continues (`init_from`).
    steps_before = _total_steps(init_from) if init_from is not None else 0
    recipe = {"batch": batch, "lr": lr, "lambda_rec": lambda_rec, "lambda_sync": lambda_sync if syncnet is not None else 0.0,
              "lambda_mouth": lambda_mouth, "lambda_cross": lambda_cross, "lambda_adv": lambda_adv,
              "lambda_trust": lambda_trust if config.footage else 0.0,
              "init": init_from.name if init_from is not None else None}
    if state_path.exists():
        # Every rank: the sampler's state and torch's RNG (the decoder noise) are the same on all ranks.
        meta = load_state(state_path, modules, {"generator": ema}, optimizers)
        sampler.set_state(meta["sampler"])
        if rank == 0:
            log.truncate_after(meta["step"])
    gen = torch.Generator()  # jitter RNG, seeded from (seed, step) so a resumed run draws what an uninterrupted one would
    trained = DistributedDataParallel(readout) if world > 1 else readout
    judge = DistributedDataParallel(discriminator) if world > 1 and discriminator is not None else discriminator

    def write_model(path: Path, step: int, record: dict) -> None:
        ema.copy_to(shipped)
        modules = {"generator": shipped} | ({"syncnet": syncnet} if syncnet is not None else {})
        save_checkpoint(path, modules, config, {"step": step, "total_steps": steps_before + step, "recipe": recipe,
                                                "data": sorted(c.name for c in train), **record})

    def checkpoint(step: int, record: dict) -> None:
        meta.update(step=step, sampler=sampler.state())
        save_state(state_path, modules, {"generator": ema}, optimizers, meta)
        write_model(model_path, step, record)

    def select(step: int, record: dict) -> None:
        ema.copy_to(shipped)
        record.update({f"dev_{k}": v for k, v in follows_speech(shipped.to(device).eval(), dev, select_speech).items()})
        shipped.cpu()
        # The best score lives in the best file itself, so an interrupted and resumed run compares with it.
        best = read_metadata(best_path)[1]["selected"]["dev_cross_r"] if best_path.exists() else None
        if best is None or record["dev_cross_r"] > best:
            write_model(best_path, step, record | {"selected": {"dev_cross_r": record["dev_cross_r"], "step": step}})
            bar.write(f"step {step}: best so far on other speech (dev cross r {record['dev_cross_r']:.3f}): {best_path}")

    bar = tqdm(total=steps, initial=meta["step"], desc="model", unit="step", disable=rank > 0)
    for step in range(meta["step"] + 1, steps + 1):
        b = sampler.windows(batch * world, (rank, world))
        gen.manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
        # One jitter for the reference, its window and the frames warped onto it: they come from the same shot.
        views = [b["ref"][:, None], b["frames"]] + ([b["warped"]] if "warped" in b else [])
        jittered = colour_jitter(torch.cat(views, dim=1), gen, part=(rank, world))
        b["ref"], b["frames"] = jittered[:, 0], jittered[:, 1 : 1 + WINDOW]
        if "warped" in b:
            b["warped"] = jittered[:, 1 + WINDOW :]
        b = {k: v.to(device) for k, v in b.items()}
        use_sync = syncnet if step > sync_start else None
        losses, fakes = readout_losses(trained, use_sync, b, lambda_rec, lambda_sync, lambda_mouth, reader, lambda_cross,
                                       judge, lambda_adv, lambda_trust)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        ema.update(model)
        if judge is not None:
            losses["discriminator"] = discriminator_loss(judge, b["frames"].flatten(0, 1), fakes)
            optimizers["discriminator"].zero_grad(set_to_none=True)
            losses["discriminator"].backward()
            optimizers["discriminator"].step()
        record = {"step": step, "time": time.time(), **batch_mean(losses, world)}
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in ("l1", "texture", "sync", "mouth", "cross", "adversarial", "distrust")})
        if rank > 0:
            continue
        if step % eval_every == 0 or step == steps:
            record.update(dev_losses(readout, syncnet, dev_sampler, 4, lambda_rec, lambda_sync, lambda_mouth, device, reader,
                                     lambda_cross, lambda_trust))
            if select_speech is not None:
                select(step, record)
            bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("dev_")))
        log.write(record)
        if step % save_every == 0 or step == steps:
            checkpoint(step, record)
    bar.close()
    if rank == 0:
        log.plot()
    # DistributedDataParallel holds the process group: freed after it, at the return, the group's teardown can hang.
    del trained, judge
    leave(world)
    return best_path if select_speech is not None else model_path


def _total_steps(model_file: Path) -> int:
    facts = read_metadata(model_file)[1]
    return int(facts.get("total_steps", facts.get("step", 0)))

