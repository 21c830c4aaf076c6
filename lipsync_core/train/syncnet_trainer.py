"""`lipsync train syncnet`: contrastive SyncNet training with early stopping on the dev split.

Under torchrun `batch` is per process: N processes of batch B train as one process of batch N*B (`distributed`; each
window's in-batch negatives are the whole batch's audio)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..metrics import sync_scores
from ..models.checkpoint import save_checkpoint
from ..models.config import ModelConfig
from ..models.syncnet import SyncNet
from .augment import colour_jitter
from .data import PreparedClip, WindowSampler
from .distributed import batch_mean, from_rank0, gather, join, leave
from .log import RunLog
from .losses import contrastive_sync_loss
from .state import load_state, save_state


# Time-shifted negatives per window: in-batch negatives alone can be told apart by who is speaking,
# the shifted ones only by the timing of the mouth, which is what SyncNet is for.
SHIFTED_NEGATIVES = 6


def dev_accuracy(syncnet: SyncNet, clips: list[PreparedClip]) -> dict:
    syncnet.eval()
    scores = [sync_scores(syncnet, c.crops, c.mel_windows(syncnet.config.mel_window), c.valid) for c in clips]
    syncnet.train()
    scores = [s for s in scores if s["windows"]]
    return {
        "dev_offset_accuracy": float(np.mean([s["offset_accuracy"] for s in scores])),
        "dev_lse_c": float(np.mean([s["lse_c"] for s in scores])),
    }


def train_syncnet(train: list[PreparedClip], dev: list[PreparedClip], run_dir: Path, config: ModelConfig, *,
                  steps: int, batch: int = 48, lr: float = 5e-4, seed: int = 0, eval_every: int = 200,
                  patience: int = 5, device: torch.device = torch.device("cpu")) -> Path:
    """Train until `steps` or until dev AV-offset accuracy stops improving for `patience` evaluations.
    Writes run_dir/state.safetensors (resume point) and run_dir/syncnet.safetensors (best on dev)."""
    rank, world, device = join(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = SyncNet(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = WindowSampler(train, config.syncnet_frames, config.mel_window, seed)
    log = RunLog(run_dir)
    state_path, best_path = run_dir / "state.safetensors", run_dir / "syncnet.safetensors"
    meta = {"step": 0, "best": -1.0, "since_best": 0}
    if state_path.exists():
        meta = load_state(state_path, {"syncnet": model}, {}, {"syncnet": opt})
        sampler.set_state(meta["sampler"])
        if rank == 0:
            log.truncate_after(meta["step"])
    gen = torch.Generator()  # jitter RNG, seeded from (seed, step) so a resumed run draws what an uninterrupted one would
    trained = DistributedDataParallel(model) if world > 1 else model
    bar = tqdm(total=steps, initial=meta["step"], desc="syncnet", unit="step", disable=rank > 0)
    for step in range(meta["step"] + 1, steps + 1):
        b = sampler.sync_batch(batch * world, n_shifts=SHIFTED_NEGATIVES, part=(rank, world))
        gen.manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
        mouths = colour_jitter(model.mouths(b["frames"]), gen, part=(rank, world)).to(device)
        # The true and the shifted audio through the audio tower at once: DistributedDataParallel expects one forward.
        video, audio = trained(mouths, torch.cat([b["mel"], b["shifted"].flatten(0, 1)]).to(device))
        audio, shifted = audio[:batch], audio[batch:].view(batch, -1, audio.shape[-1])
        loss = contrastive_sync_loss(video, gather(audio, world), shifted, first=rank * batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record = {"step": step, "time": time.time(), **batch_mean({"loss": loss}, world)}
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if step % eval_every == 0 or step == steps:
            if rank == 0:
                record.update(dev_accuracy(model, dev))
                if record["dev_offset_accuracy"] > meta["best"]:
                    meta.update(best=record["dev_offset_accuracy"], since_best=0)
                    save_checkpoint(best_path, {"syncnet": model}, config, {"step": step, **record})
                else:
                    meta["since_best"] += 1
                meta.update(step=step, sampler=sampler.state())
                save_state(state_path, {"syncnet": model}, {}, {"syncnet": opt}, meta)
                bar.write(f"step {step}: dev AV-offset accuracy {record['dev_offset_accuracy']:.3f} (best {meta['best']:.3f})")
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
