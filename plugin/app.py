"""`lipsync-panel [PLATE] [AUDIO] [--shot SIDECAR]`: the desktop panel."""

from __future__ import annotations

import argparse
import sys
import traceback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lipsync-panel", description="Review a shot, correct its mask, render and compare.")
    parser.add_argument("plate", nargs="?", help="video file or image sequence (plate.####.exr, or one frame of it)")
    parser.add_argument("audio", nargs="?", help="the dub audio")
    parser.add_argument("--shot", help="a shot sidecar (.lipsync.json) to open")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LipSync")
    window = MainWindow()

    def unexpected(kind, value, trace):
        # A bug must not take the artist's session down: show it, keep the window.
        traceback.print_exception(kind, value, trace)
        window.show_error(f"Unexpected error: {kind.__name__}: {value}\n\n(details on the console)")

    sys.excepthook = unexpected
    window.show()
    if args.plate or args.shot:
        window.open(plate=args.plate, audio=args.audio, sidecar=args.shot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
