"""`python -m plugin.screenshot PLATE AUDIO OUT.png`: a picture of the panel working a real shot, for the
docs (docs/panel.png; refresh it when the UI changes). Runs offscreen: no display needed.

The shot is copied to a temporary folder first, so the sidecar and roto files this writes never land
beside the real plate. It keys a grow override at two frames, paints a frame and bypasses a range, so
the picture shows the key markers, painted frame and bypass range on the timeline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugin.screenshot")
    parser.add_argument("plate")
    parser.add_argument("audio")
    parser.add_argument("output")
    parser.add_argument("--frame", type=int, help="the frame shown (default: a third into the shot)")
    parser.add_argument("--size", default="1400x860")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        plate = Path(folder) / Path(args.plate).name
        audio = Path(folder) / Path(args.audio).name
        shutil.copy(args.plate, plate)
        shutil.copy(args.audio, audio)
        window = MainWindow()
        window.confirm_close = False
        width, height = (int(v) for v in args.size.split("x"))
        window.resize(width, height)
        window.show()
        if not window.open(plate=plate, audio=audio):
            print(window.errors[-1], file=sys.stderr)
            return 1
        while window.document.track is None and not window.errors:
            app.processEvents()
            time.sleep(0.02)
        document = window.document
        first, last = document.range
        span = last - first
        frame = args.frame if args.frame is not None else first + span // 3
        document.set_frame(first + span // 6)
        document.set_key("grow", value=0.0)
        document.set_frame(first + span // 2)
        document.set_key("grow", value=8.0)
        document.add_bypass(first + span * 5 // 6, first + span * 5 // 6 + max(2, span // 20))
        document.set_frame(first + span * 2 // 3)
        if document.begin_stroke():
            points = document.track.landmarks(document.frame, document.shot.face)
            if points is not None:
                chin = points[152, :2]
                document.stroke([(chin[0] - 20, chin[1] + 8), (chin[0] + 20, chin[1] + 8)], 6, False)
            document.end_stroke()
        document.set_frame(frame)
        window.side.setCurrentIndex(0)
        for _ in range(20):
            app.processEvents()
        window.grab().save(args.output)
        window.close()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
