"""Model files: .safetensors only (never unpickled), with the config and training facts in the metadata."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from safetensors import safe_open
import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import ModelError
from .config import ModelConfig

MODEL_VERSION = "stylelipsync-1"


def save_checkpoint(path: str | Path, modules: dict[str, nn.Module], config: ModelConfig, facts: dict | None = None) -> None:
    """Write `modules` (name -> module) with the config and `facts` (JSON-able) atomically."""
    path = Path(path)
    tensors = {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }
    metadata = {"format": MODEL_VERSION, "config": config.to_json(), "facts": json.dumps(facts or {}, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def check_finite(path: str | Path, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Refuse a model file holding NaN or infinite weights: it would render black or garbage and say nothing."""
    bad = [name for name, value in tensors.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise ModelError(f"{path}: {what} holds NaN or infinite weights ({len(bad)} tensor(s), e.g. {bad[0]}): "
                         "the file is damaged; retrain or restore it")


def file_metadata(path: str | Path) -> dict[str, str]:
    """The metadata header of a .safetensors file (any format), refusing anything else."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelError(f"{path}: model files must be .safetensors (pickled .pt/.pth files are never loaded)")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise ModelError(f"{path}: not a readable .safetensors file ({error})") from None


def read_metadata(path: str | Path) -> tuple[ModelConfig, dict]:
    """The config and training facts stored in a model file, without loading its tensors."""
    metadata = file_metadata(path)
    if metadata.get("format") != MODEL_VERSION:
        raise ModelError(f"{path}: model format {metadata.get('format')!r}, this version reads {MODEL_VERSION!r}")
    try:
        config = ModelConfig.from_json(metadata["config"])
    except (KeyError, TypeError, ValueError) as error:  # written by a newer or foreign version
        raise ModelError(f"{path}: its model config cannot be read by this version ({error})") from None
    return config, json.loads(metadata.get("facts", "{}"))


def load_checkpoint(path: str | Path, modules: dict[str, nn.Module], config: ModelConfig | None = None) -> dict:
    """Load weights into `modules` (name -> module, each exactly matching the file). Returns the facts.

    Refuses a file whose config differs from `config` or whose tensors do not fit, naming the difference.
    """
    stored_config, facts = read_metadata(path)
    if config is not None and stored_config != config:
        raise ModelError(
            f"{path}: trained with config {stored_config.name!r} ({stored_config.size} px, w_dim {stored_config.w_dim}), "
            f"but config {config.name!r} ({config.size} px, w_dim {config.w_dim}) was asked for"
        )
    # Check every module before loading any: a refused file must leave the models as they were
    # (load_state_dict copies the tensors that fit before it reports the ones that do not).
    states = {}
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for name, module in modules.items():
            prefix = f"{name}."
            state = {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
            if not state:
                raise ModelError(f"{path}: has no weights for {name!r}")
            expected = module.state_dict()
            problems = [f"missing {k}" for k in sorted(expected.keys() - state.keys())]
            problems += [f"unexpected {k}" for k in sorted(state.keys() - expected.keys())]
            problems += [f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
                         for k, v in expected.items() if k in state and state[k].shape != v.shape]
            if problems:
                model_config = getattr(module, "config", None)
                asked = f" (config {model_config.name!r})" if isinstance(model_config, ModelConfig) else ""
                raise ModelError(
                    f"{path}: weights for {name!r} (trained with config {stored_config.name!r}) do not fit "
                    f"this model{asked}: {len(problems)} tensor(s) differ, e.g. {'; '.join(problems[:3])}"
                )
            check_finite(path, state, f"its {name}")
            states[name] = state
    for name, module in modules.items():
        module.load_state_dict(states[name], strict=True)
    return facts


def load_widened(path: str | Path, name: str, module: nn.Module, config: ModelConfig) -> dict:
    """Load `name`'s weights from a model of the same numbers as `config` that may differ in `footage`: the footage
    path's renderer starts from the single-reference generator. Where this model's tensor is wider (E_face's stem
    takes the warped frame too, G's toRGB also draws the confidence) the file's slice is copied and the rest is zero,
    so the widened model starts by drawing what the file's does. Returns the file's facts."""
    stored, facts = read_metadata(path)
    if replace(stored, name=config.name, footage=config.footage) != config:
        raise ModelError(f"{path}: trained with config {stored.name!r}, whose numbers differ from {config.name!r}'s: "
                         "it cannot start this model")
    prefix = f"{name}."
    with safe_open(str(path), framework="pt") as f:
        state = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    if not state:
        raise ModelError(f"{path}: has no weights for {name!r}")
    check_finite(path, state, f"its {name}")
    widened = {}
    for key, value in module.state_dict().items():
        stored_value = state.get(key)
        fits = stored_value is not None and stored_value.dim() == value.dim() and all(
            a <= b for a, b in zip(stored_value.shape, value.shape))
        if not fits:
            raise ModelError(f"{path}: {name}.{key} does not fit this model ({'missing' if stored_value is None else tuple(stored_value.shape)} "
                             f"in the file, {tuple(value.shape)} in the model)")
        grown = torch.zeros_like(value)
        if value.dim() == 4 and value.shape[1] > stored_value.shape[1]:
            # Equalised-learning-rate convs scale their weights by 1 / sqrt(fan-in) when they run: with more inputs
            # the copied weights are scaled up to keep their outputs.
            stored_value = stored_value * (value.shape[1] / stored_value.shape[1]) ** 0.5
        grown[tuple(slice(0, n) for n in stored_value.shape)] = stored_value
        widened[key] = grown
    module.load_state_dict(widened, strict=True)
    return facts
