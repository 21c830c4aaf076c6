"""The `lipsync` console command: a thin shell over the library.

Each subcommand lives beside the code it drives and registers itself through `add_parser(subparsers)`;
this module only collects them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .crash_log import unexpected
from .errors import LipSyncError

DEBUG_HELP = "print the full traceback of an error instead of one line (and its log file)"

# (module, purpose) in the order `--help` lists them.
SUBCOMMANDS = [
    "lipsync_core.media.probe",
    "lipsync_core.face.analyze",
    "lipsync_core.dub.cli",
    "lipsync_core.motion.cli",
    "lipsync_core.dub.batch",
    "lipsync_core.dub.timeline",
    "lipsync_core.farm.cli",
    "lipsync_core.dub.demo",
    "lipsync_core.provenance.verify",
    "lipsync_core.train.cli",
    "lipsync_core.train.personalize_cli",
    "lipsync_core.eval.cli",
    "lipsync_core.ops.plugin_json",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lipsync",
        description="Re-generate an actor's lips so they match new dialogue (StyleLipSync). "
        "Typical use: `lipsync probe PLATE` to check a shot, then `lipsync dub PLATE AUDIO -o OUT`.",
    )
    parser.add_argument("--version", action="version", version=f"lipsync {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    for subparser in subparsers.choices.values():
        # Also after the command (`lipsync dub ... --debug`); not given there, it keeps the value given before it.
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except LipSyncError as error:
        if args.debug:
            raise
        print(f"lipsync {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lipsync {args.command}: cancelled", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line for the user, the traceback in a log (printed with --debug)
        if args.debug:
            raise
        print(f"lipsync {args.command}: error: {unexpected(error, args.command)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
