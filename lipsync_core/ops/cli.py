"""The `lipsync` subcommands' arguments, made from the operations' parameters.

Spelling on the command line: `--name-with-dashes`, or the parameter's own `flags`; a bool that is on
by default is turned off with `--no-name`; a `many` option is given once per item. Animatable
parameters are shot controls: not given, the shot's own (keyed) value applies.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from ..dub.timing import offset_seconds
from ..errors import LipSyncError
from .schema import Operation, Param, limits_text, shown


def frame_range(text: str) -> tuple[int, int]:
    """'1001-1050' (or one frame, '1001') -> (1001, 1050)."""
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame range: write A-B, e.g. 1001-1050")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise argparse.ArgumentTypeError(f"frame range {text!r} is empty: the first frame is after the last")
    return first, last


def rank(text: str) -> int | None:
    """A low-rank update's rank: a whole number, or 'full' (None: the whole weight)."""
    if text == "full":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"rank {text!r}: a whole number, or 'full'")
    return int(text)


def audio_offset(text: str) -> str:
    """An audio offset as given ('3f', '0.12s'): its spelling is checked here; its frames need the plate's rate."""
    try:
        offset_seconds(text, 1.0)
    except LipSyncError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


CONVERTERS = {
    "clip": Path, "mask": Path, "audio": Path, "model": Path, "shot": Path, "path": Path,
    "int": int, "float": float, "str": str, "choice": str, "offset": audio_offset,
    "frames": frame_range, "rank": rank,
}


def flags(param: Param) -> tuple[str, ...]:
    """How `param` is spelled on the command line."""
    if param.positional:
        return (param.name,)
    if param.flags:
        return param.flags
    dashed = param.name.replace("_", "-")
    return (f"--no-{dashed}",) if param.type == "bool" and param.default is True else (f"--{dashed}",)


def help_text(param: Param) -> str:
    """The --help line of `param`: its help, then what applies when it is not given."""
    if param.type == "bool":
        return f"turn off: {param.help}" if param.default is True else param.help
    if param.animatable:
        return f"{param.help} (not given: the shot's value, else {shown(param.default)})"
    if param.default is None or param.positional:
        return param.help
    return f"{param.help} (default: {shown(param.default)})"


def _converter(param: Param):
    convert = CONVERTERS[param.type]
    if param.type not in ("int", "float"):
        return convert
    low, high = param.range or (None, None)
    kind = "a whole number" if param.type == "int" else "a finite number"

    def checked(text: str):
        # float() takes 'nan' and 'inf', and no range check refuses NaN: refuse both here, naming the option.
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{param.name.replace('_', '-')} {text}: must be {kind}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{param.name.replace('_', '-')} {text}: must be {limits_text(low, high)}")
        return value

    return checked


def add_arguments(parser: argparse.ArgumentParser, params) -> None:
    """Add the command-line arguments of `params` (those with `cli`) to `parser`."""
    for param in params:
        if not param.cli:
            continue
        options: dict = {"help": help_text(param).replace("%", "%%")}  # argparse formats help with %
        if param.type == "bool":
            options["action"] = "store_false" if param.default is True else "store_true"
        else:
            options["type"] = _converter(param)
            # A given animatable value replaces the shot's keys; not given, the shot's own apply.
            options["default"] = None if param.animatable else param.default
            if param.choices:
                options["choices"] = param.choices
            if param.metavar:
                options["metavar"] = param.metavar
            elif param.type == "frames":
                options["metavar"] = "A-B"
        if param.positional:
            if param.many:
                options["nargs"] = "+" if param.required else "*"
        else:
            options["dest"] = param.name
            if param.required:
                options["required"] = True
            if param.many:
                options["action"] = "append"
        parser.add_argument(*flags(param), **options)


def add_command(subparsers, operation: Operation) -> argparse.ArgumentParser:
    """The subcommand of `operation` (the last word of its command) with all its arguments."""
    parser = subparsers.add_parser(operation.command[-1], help=operation.help, description=operation.description)
    add_arguments(parser, operation.all())
    return parser
