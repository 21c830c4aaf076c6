"""The operation registry is the one schema: the CLI, plugin.json and the help text all agree with it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from lipsync_core.cli import build_parser
from lipsync_core.ops import NODES, OPERATIONS
from lipsync_core.ops.cli import flags
from lipsync_core.ops.plugin_json import PLUGIN_JSON, REGENERATE, manifest


def _subparser(command: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in command:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_schema_parameter_is_a_flag_with_its_help_and_no_flag_is_missing_from_the_schema(name):
    operation = OPERATIONS[name]
    parser = _subparser(operation.command)
    # --debug is every command's (how errors are shown), not an operation's parameter.
    actions = {a.dest: a for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.dest != "debug"}
    assert set(actions) == {p.name for p in operation.all() if p.cli}
    help_text = "".join(parser.format_help().split())  # argparse re-wraps lines (also after hyphens)
    for param in operation.all():
        if not param.cli:
            continue
        action = actions[param.name]
        assert tuple(action.option_strings or [action.dest]) == flags(param)
        assert param.help in action.help.replace("%%", "%")  # argparse help escapes %
        assert "".join(param.help.split()) in help_text, f"--help of {name} lacks {param.name}'s help"
        if param.type != "bool":
            assert action.default == (None if param.animatable else param.default)
            assert action.required == (param.required and not param.positional) or param.positional


def test_parsing_gives_the_schema_defaults():
    args = build_parser().parse_args(["dub", "plate.mp4", "dub.wav", "-o", "out.mp4"])
    assert (args.audio_offset, args.batch, args.device, args.face, args.grow) == ("0", 8, "auto", None, None)
    args = build_parser().parse_args(["personalize", "a.mp4", "--frames", "5-74", "--rank", "full", "-o", "x.safetensors"])
    assert (args.frames, args.rank, args.sync_regularizer, args.steps) == ([(5, 74)], None, True, 200)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dub", "plate.mp4", "dub.wav", "-o", "out.mp4", "--grow", "900"])  # outside -500..500


def test_plugin_json_is_generated_from_the_registry():
    assert PLUGIN_JSON.is_file(), f"{PLUGIN_JSON} is missing: run `{REGENERATE}`"
    committed = json.loads(PLUGIN_JSON.read_text())
    assert committed == manifest(), (
        f"{PLUGIN_JSON} differs from the operation registry or the bundled models in resources/models: "
        f"run `{REGENERATE}` and commit the result"
    )
    assert [node["name"] for node in committed["nodes"]] == list(NODES) == ["analyze", "generate", "personalize", "train", "evaluate"]
    for node in committed["nodes"]:
        operation = NODES[node["name"]]
        for part in ("inputs", "outputs", "params"):
            assert [p["name"] for p in node[part]] == [p.name for p in getattr(operation, part) if p.node]
    generate = NODES["generate"]
    animatable = [p["name"] for p in committed["nodes"][1]["params"] if p["animatable"]]
    assert animatable == [p.name for p in generate.params if p.animatable] == [
        "grow", "feather", "offset_y", "jaw_extension", "mouth_margin"]
    assert committed["hosts"] == {"ofx": "nodes/ofx", "nuke": "nodes/nuke", "resolve": "nodes/resolve", "panel": "plugin"}
    assert committed["models"] and all(len(m["sha256"]) == 64 and m["config"] for m in committed["models"])


def test_a_host_can_read_the_schema_and_build_a_worker_command_without_the_heavy_libraries():
    # Nuke's and Resolve's own Pythons have no numpy, OpenCV, PyAV or torch: the schema and the worker
    # that runs the core in our environment must import without them.
    code = ("import sys, lipsync_core.ops, lipsync_core.ops.cli, lipsync_core.dub.worker; "
            "print(sorted(m for m in ('numpy', 'cv2', 'av', 'torch', 'OpenEXR') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
