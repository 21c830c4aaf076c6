"""Resumable training state in one .safetensors file: weights, EMA weights, Adam moments, step, RNG.

Nothing here is pickled: optimizer moments are stored as named tensors and the rest as JSON metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn


class EMA:
    """Exponential moving average of a module's parameters (the weights that ship)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, module: nn.Module) -> None:
        module.load_state_dict(self.shadow)


def save_state(path: Path, modules: dict[str, nn.Module], emas: dict[str, EMA], optimizers: dict[str, torch.optim.Optimizer], meta: dict) -> None:
    tensors = {}
    for name, module in modules.items():
        tensors.update({f"model.{name}.{k}": v for k, v in module.state_dict().items()})
    for name, ema in emas.items():
        tensors.update({f"ema.{name}.{k}": v for k, v in ema.shadow.items()})
    opt_meta = {}
    for name, opt in optimizers.items():
        state = opt.state_dict()
        opt_meta[name] = {"param_groups": state["param_groups"], "steps": {}}
        for pid, s in state["state"].items():
            opt_meta[name]["steps"][str(pid)] = float(s["step"])
            tensors[f"opt.{name}.{pid}.exp_avg"] = s["exp_avg"]
            tensors[f"opt.{name}.{pid}.exp_avg_sq"] = s["exp_avg_sq"]
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta), "optimizers": json.dumps(opt_meta)})
    os.replace(tmp, path)


def load_state(path: Path, modules: dict[str, nn.Module], emas: dict[str, EMA], optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore everything `save_state` wrote; returns its `meta`."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())

        def group(prefix):
            return {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}

        for name, module in modules.items():
            module.load_state_dict(group(f"model.{name}."))
        for name, ema in emas.items():
            ema.shadow = group(f"ema.{name}.")
        opt_meta = json.loads(metadata["optimizers"])
        for name, opt in optimizers.items():
            state = {
                int(pid): {
                    "step": torch.tensor(step),
                    "exp_avg": f.get_tensor(f"opt.{name}.{pid}.exp_avg"),
                    "exp_avg_sq": f.get_tensor(f"opt.{name}.{pid}.exp_avg_sq"),
                }
                for pid, step in opt_meta[name]["steps"].items()
            }
            opt.load_state_dict({"state": state, "param_groups": opt_meta[name]["param_groups"]})
        torch.set_rng_state(f.get_tensor("rng.torch"))
    return json.loads(metadata["meta"])
