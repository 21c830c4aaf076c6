"""plugin.json: the manifest a host reads without importing the core (nodes, parameters, entry points,
bundled models, version), generated from the operation registry.

    lipsync plugin-json --write     # after changing an operation's parameters or a bundled model
    lipsync plugin-json --check     # exit 1 when the committed file is out of date (a test does the same)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__
from . import NODES
from .cli import flags
from .schema import Param

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_JSON = ROOT / "plugin.json"
MODELS = ROOT / "resources" / "models"
REGENERATE = "lipsync plugin-json --write"
# Where each host finds its adapter, relative to the repository root.
HOSTS = {"ofx": "nodes/ofx", "nuke": "nodes/nuke", "resolve": "nodes/resolve", "panel": "plugin"}


def param_json(param: Param) -> dict:
    return {
        "name": param.name,
        "type": param.type,
        "help": param.help,
        "default": param.default,
        "range": list(param.range) if param.range else None,
        "choices": list(param.choices),
        "animatable": param.animatable,
        "required": param.required,
        "many": param.many,
        "flag": flags(param)[-1] if param.cli and not param.positional else None,  # how a worker passes it to `lipsync`
    }


def bundled_models() -> list[dict]:
    """Each bundled model file: its path, sha256 and config name (from its safetensors metadata; the motion
    model's config is named 'motion')."""
    from ..models.actor import file_sha256  # torch: only when the manifest is written or checked
    from ..models.checkpoint import file_metadata, read_metadata
    from ..models.motion import MOTION_FORMAT

    models = []
    for path in sorted(MODELS.glob("*.safetensors")):
        config = "motion" if file_metadata(path).get("format") == MOTION_FORMAT else read_metadata(path)[0].name
        models.append({"file": path.relative_to(ROOT).as_posix(), "sha256": file_sha256(path), "config": config})
    return models


def manifest() -> dict:
    return {
        "name": "lipsync",
        "version": __version__,
        "command": "lipsync",
        "hosts": HOSTS,
        "models": bundled_models(),
        "nodes": [
            {
                "name": op.name,
                "command": " ".join(("lipsync", *op.command)),
                "help": op.help,
                "inputs": [param_json(p) for p in op.inputs if p.node],
                "outputs": [param_json(p) for p in op.outputs if p.node],
                "params": [param_json(p) for p in op.params if p.node],
            }
            for op in NODES.values()
        ],
    }


def text() -> str:
    return json.dumps(manifest(), indent=2) + "\n"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plugin-json", help="write or check plugin.json (the host manifest) from the operation registry",
        description=f"Print the manifest hosts read ({PLUGIN_JSON.name}: nodes, parameters, entry points, bundled "
        "models, version), as generated from the operation registry; --write updates the file, --check compares.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {PLUGIN_JSON}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 when {PLUGIN_JSON} differs from the registry")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    generated = text()
    if args.write:
        PLUGIN_JSON.write_text(generated)
        print(f"wrote {PLUGIN_JSON}")
    elif args.check:
        if not PLUGIN_JSON.is_file() or PLUGIN_JSON.read_text() != generated:
            print(f"{PLUGIN_JSON} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{PLUGIN_JSON} is up to date")
    else:
        sys.stdout.write(generated)
    return 0
