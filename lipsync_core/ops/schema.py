"""The parameter schema: what one node operation takes, gives and can be set to.

Every surface is built from these declarations: the `lipsync` command line (ops/cli.py), plugin.json
(ops/plugin_json.py), the panel and the host adapters in nodes/. Adding a parameter is one `Param`
in the operation's module; nothing else needs an edit.

This package does not import torch or the model, so a host can read the schema at start-up (Nuke's
menu.py, an OFX describe action) in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a parameter holds. Hosts map each type to one kind of knob/parameter; the CLI to one converter.
TYPES = {
    "clip": "a picture: video file or image sequence (plate.####.exr); a host's image input or output",
    "mask": "a one-channel picture: the blend mask (an EXR layer, a .mov's alpha, a host's mask image)",
    "audio": "an audio file, or a video whose audio track is used",
    "model": "a model or actor file (.safetensors)",
    "shot": "a shot sidecar (PLATE.lipsync.json)",
    "path": "any other file or folder",
    "int": "a whole number",
    "float": "a number",
    "bool": "on or off",
    "str": "text",
    "choice": "one of `choices`",
    "frames": "an inclusive frame range A-B in the plate's own numbering",
    "offset": "a time: frames as 3f, seconds as 0.12s",
    "rank": "a whole number, or 'full'",
}


def shown(value) -> str:
    """A default or a limit as --help and messages show it: 'automatic' for None, numbers short."""
    if value is None:
        return "automatic"
    return f"{value:g}" if isinstance(value, float) else str(value)


def limits_text(low: float | None, high: float | None) -> str:
    """How a range reads in a message: '-500..500', 'at least 1', 'at most 3'."""
    if low is not None and high is not None:
        return f"{shown(low)}..{shown(high)}"
    return f"at least {shown(low)}" if low is not None else f"at most {shown(high)}"


@dataclass(frozen=True)
class Param:
    """One input, output or parameter of an operation."""

    name: str  # the operation function's keyword, the CLI's dest, the host's knob name, plugin.json's key
    type: str  # a key of TYPES
    help: str  # one phrase a user reads in --help, a host's tooltip and plugin.json
    default: object = None  # None: not given (the help says what happens then); paths are strings
    range: tuple[float | None, float | None] | None = None  # inclusive limits of a number; None: open
    choices: tuple[str, ...] = ()
    animatable: bool = False  # may change per frame: hosts key it, the shot sidecar stores keyframes
    required: bool = False
    many: bool = False  # a list: positional files, or an option given once per clip
    positional: bool = False  # on the CLI: an argument, not an --option
    flags: tuple[str, ...] = ()  # CLI spelling when it is not --name-with-dashes (e.g. -o/--output)
    metavar: str | None = None  # CLI placeholder when the type's default one reads badly
    cli: bool = True  # False: hosts only
    node: bool = True  # False: command line only (progress format, resuming, a render range a host sets itself)

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r} (known: {', '.join(TYPES)})")
        if (self.type == "choice") != bool(self.choices):
            raise ValueError(f"parameter {self.name!r}: a 'choice' has choices, and only a 'choice' has them")


@dataclass(frozen=True)
class Operation:
    """A node operation: its inputs (clips, audio, model, shot sidecar), outputs and parameters."""

    name: str  # the node's name: analyze, generate, personalize, train, evaluate
    command: tuple[str, ...]  # its `lipsync` subcommand: ("dub",), ("train", "model")
    help: str  # one line
    description: str
    inputs: tuple[Param, ...] = ()
    outputs: tuple[Param, ...] = ()
    params: tuple[Param, ...] = ()
    node: bool = True  # False: a command-line step only, not offered to hosts

    def __post_init__(self):
        names = [p.name for p in self.all()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"operation {self.name!r}: {', '.join(repeated)} declared more than once")

    def all(self) -> tuple[Param, ...]:
        """Inputs, outputs and parameters, in the order the CLI lists them."""
        return self.inputs + self.outputs + self.params

    def param(self, name: str) -> Param:
        for p in self.all():
            if p.name == name:
                return p
        raise KeyError(f"operation {self.name!r} has no parameter {name!r}")
