"""Training on several processes started by torchrun (it sets WORLD_SIZE, RANK, LOCAL_RANK): what the trainers share.

Every process draws the whole batch of all processes (one sampler seed and state everywhere) and trains on its own
even share, with the random numbers (jitter, noise, dropout) those samples get in the whole batch; gradients are
averaged. So N processes of batch B train as one process of batch N*B, and every process's RNG and sampler states are
rank 0's: its state file resumes them all. Rank 0 alone evaluates, logs and writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_autograd
from torch import nn

from ..models.layers import NoiseInjection, ShareDropout


def join(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, processes, this process's device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return dist.get_rank(), world, device


def leave(world: int) -> None:
    if world > 1:
        dist.barrier()  # no process tears the group down while another may still be talking in it
        dist.destroy_process_group()


def split_randomness(model: nn.Module, rank: int, world: int) -> None:
    """Each layer that draws random numbers per sample draws them for the whole batch and keeps this process's share."""
    for layer in model.modules():
        if isinstance(layer, (NoiseInjection, ShareDropout)):
            layer.part = (rank, world)


def process_mean(value: torch.Tensor, world: int) -> torch.Tensor:
    """The mean of `value` over the processes (no gradient)."""
    value = value.detach().float()
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value


def batch_mean(losses: dict[str, torch.Tensor], world: int) -> dict[str, float]:
    """The losses of the whole batch: each process's (of its equal share) averaged over the processes."""
    return dict(zip(losses, process_mean(torch.stack(list(losses.values())), world).tolist()))


def gather(share: torch.Tensor, world: int) -> torch.Tensor:
    """Every process's share, in rank order, with the gradient flowing back to each process's own share."""
    return torch.cat(distributed_autograd.all_gather(share)) if world > 1 else share


def from_rank0(value, world: int):
    """Rank 0's `value` on every process: what only rank 0, which evaluates, can know."""
    if world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, 0)
    return box[0]
