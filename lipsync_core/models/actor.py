"""Actor models: a base model plus the few generator tensors that personalization changed.

An actor file is a .safetensors file of format `stylelipsync-actor-1` holding
- `set.<name>`: generator tensors replaced whole (decoder biases, style affines, toRGB, SaMF, ...);
- `low_rank.<name>.up` / `low_rank.<name>.down`: a low-rank update of a generator weight,
  W + (up @ down) reshaped to W's shape;
and in its metadata the config, the base model's file name, path and sha256, and the card facts.

`load_generator` is the one way to load a generator for rendering: it reads base models and actor
files alike, and applies an actor only to the exact base file (same sha256) it was made from.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import ModelError
from .checkpoint import MODEL_VERSION, check_finite, file_metadata, load_checkpoint, read_metadata
from .config import ModelConfig
from .stylelipsync import StyleLipSync

ACTOR_VERSION = "stylelipsync-actor-1"
BUNDLED_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
DEFAULT_MODEL = BUNDLED_MODELS / "stylelipsync_cpu.safetensors"  # the base model that ships
DEFAULT_RENDERER = BUNDLED_MODELS / "stylelipsync_footage.safetensors"  # the footage path's renderer that ships


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def low_rank_delta(up: torch.Tensor, down: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The update a pair of low-rank factors makes to a weight: (out, r) @ (r, rest) -> `shape`."""
    return (up @ down).view(shape)


def apply_actor(generator: StyleLipSync, tensors: dict[str, torch.Tensor]) -> StyleLipSync:
    """Put an actor's tensors (`set.*`, `low_rank.*.up/down`) into a base generator, in place.
    Every tensor is checked before any is applied."""
    params = dict(generator.named_parameters())
    problems = []
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        if kind == "low_rank":
            name = name.rpartition(".")[0]
        if kind not in ("set", "low_rank") or name not in params:
            problems.append(f"{key} names no generator weight")
        elif kind == "set" and value.shape != params[name].shape:
            problems.append(f"{key} is {tuple(value.shape)}, the generator's {tuple(params[name].shape)}")
    if problems:
        raise ModelError(f"actor tensors do not fit the base generator: {'; '.join(problems[:3])}")
    with torch.no_grad():
        for key, value in tensors.items():
            kind, _, name = key.partition(".")
            if kind == "set":
                params[name].copy_(value)
            elif name.endswith(".up"):
                name = name.removesuffix(".up")
                params[name].add_(low_rank_delta(value, tensors[f"low_rank.{name}.down"], params[name].shape))
    return generator


def save_actor(path: str | Path, tensors: dict[str, torch.Tensor], config: ModelConfig, base: Path, facts: dict) -> None:
    """Write an actor file atomically: `tensors` as made for `apply_actor`, tied to the base file's sha256."""
    path = Path(path)
    metadata = {
        "format": ACTOR_VERSION,
        "config": config.to_json(),
        "base_name": base.name,
        "base_path": str(base.resolve()),
        "base_sha256": file_sha256(base),
        "facts": json.dumps(facts, sort_keys=True),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def is_renderer(path: str | Path) -> bool:
    """Whether a model file holds the footage path's renderer (not a generator, not an actor file)."""
    metadata = file_metadata(path)
    return metadata.get("format") == MODEL_VERSION and read_metadata(path)[0].footage


def _base_model(path: Path) -> tuple[StyleLipSync, dict]:
    config, facts = read_metadata(path)
    model = StyleLipSync(config)
    load_checkpoint(path, {"generator": model}, config)
    return model, facts


def find_base(actor: Path, metadata: dict[str, str], base: str | Path | None = None) -> Path:
    """The base model an actor file was made from: `base` when given, else the first file with the
    recorded sha256 among the recorded path, the same name beside the actor file and in the bundled models."""
    want = metadata["base_sha256"]
    if base is not None:
        candidates = [Path(base)]
    else:
        name = metadata["base_name"]
        candidates = list(dict.fromkeys([Path(metadata["base_path"]), actor.parent / name, BUNDLED_MODELS / name]))
    mismatched = []
    for candidate in candidates:
        if candidate.is_file():
            digest = file_sha256(candidate)
            if digest == want:
                return candidate
            mismatched.append(f"{candidate} (sha256 {digest[:12]})")
    made_from = f"{actor.name} was personalized from base model {metadata['base_name']} (sha256 {want[:12]})"
    if mismatched:
        raise ModelError(
            f"{made_from}, but {'; '.join(mismatched)} is a different model: an actor model only works on top of "
            "the exact base model it was made from. Use that base model, or personalize again from this one."
        )
    raise ModelError(f"{made_from}, which is not found (looked at {', '.join(str(c) for c in candidates)})")


def load_generator(path: str | Path, base: str | Path | None = None) -> tuple[StyleLipSync, dict]:
    """The generator of a model file, in eval mode on the CPU, and its facts.

    A base model loads as it is. An actor file loads its base model (see `find_base`; `base` overrides
    the search) and applies its tensors; the facts are the actor's, with the base's under 'base'.
    """
    path = Path(path)
    metadata = file_metadata(path)
    if metadata.get("format") == MODEL_VERSION:
        model, facts = _base_model(path)
        return model.eval(), facts
    if metadata.get("format") != ACTOR_VERSION:
        raise ModelError(f"{path}: model format {metadata.get('format')!r}, this version reads {MODEL_VERSION!r} and {ACTOR_VERSION!r}")
    base_path = find_base(path, metadata, base)
    model, base_facts = _base_model(base_path)
    if model.config != ModelConfig.from_json(metadata["config"]):
        raise ModelError(f"{path}: config differs from its base model {base_path}'s")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    check_finite(path, tensors, "actor model")
    apply_actor(model, tensors)
    facts = json.loads(metadata.get("facts", "{}"))
    return model.eval(), facts | {"base": {"path": str(base_path), **base_facts}}
