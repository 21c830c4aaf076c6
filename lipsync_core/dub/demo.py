"""`lipsync demo` (what `make demo` runs): dub the bundled sample shot with the bundled motion model, the mouth
moved from the actor's own frames (or drawn by a StyleLipSync model given with --model).

Writes out/demo_dubbed.mp4 and out/demo_side_by_side.mp4 (original | dubbed, with the dub audio). The side-by-side
is a dub output too: it is signed with the dub's claims, and its dubbed half keeps the dub's watermark (a gap puts it
on the watermark's grid).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError
from ..media.frames import open_plate
from ..provenance import watermark
from ..provenance.credentials import read_credentials
from ..provenance.facts import DubFacts
from .cli import ProgressBars
from .outputs import DubOutput
from .pipeline import dub

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
SAMPLE_SHOT = SAMPLES / "grid_bbaf2n.mp4"
SAMPLE_DUB = SAMPLES / "dub_speech.wav"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="dub the bundled sample shot and write a video to watch (and a side-by-side)",
        description=f"Dub {SAMPLE_SHOT.name} (a GRID corpus clip, CC BY 4.0: see {SAMPLES / 'ATTRIBUTION.md'}) "
        f"with another speaker's sentence ({SAMPLE_DUB.name}) using the bundled model.",
    )
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("out"), help="where to write the videos (default: out)")
    parser.add_argument("--model", type=Path, help="draw the mouth with this StyleLipSync model instead of moving the "
                        "actor's own (default: the actor's own frames, moved by the bundled motion model)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the model runs (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace the videos of an earlier demo")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    bars = ProgressBars()
    try:
        dubbed, side_by_side = out / "demo_dubbed.mp4", out / "demo_side_by_side.mp4"
        if side_by_side.exists() and not args.overwrite:
            raise MediaError(f"{side_by_side} exists: give --overwrite to replace the earlier demo, or choose another -o")
        report = dub(SAMPLE_SHOT, SAMPLE_DUB, dubbed, model=args.model, device=args.device, progress=bars,
                     overwrite=args.overwrite)
        write_side_by_side(SAMPLE_SHOT, dubbed, SAMPLE_DUB, side_by_side)
    finally:
        bars.close()
    print("\n".join(report.lines()))
    print(f"\nwatch: {dubbed}\n       {side_by_side} (original | dubbed)")
    return 0


def write_side_by_side(original: Path, dubbed: Path, audio: Path, path: Path) -> None:
    """The two videos next to each other, labelled, with the dub audio, signed with the claims of `dubbed`'s content
    credentials. The dubbed half starts at a multiple of the watermark's tile, where the watermark decoder looks for
    it: elsewhere its bits would be read in the wrong places."""
    claims = read_credentials(dubbed)
    if claims is None or not claims.valid or claims.dub is None:
        raise MediaError(f"{dubbed}: carries no valid content credentials of a dub to sign the side-by-side with")
    facts = DubFacts.of_assertion(claims.dub)
    dubbed_frames = {n for run in claims.dub["dubbed_frames"] for n in range(run["first"], run["last"] + 1)}
    with open_plate(original) as left, open_plate(dubbed) as right:
        info = left.info
        gap = -info.width % watermark.TILE_PIXELS
        # Marked already (the dubbed half is the dub's own frames): mark=False.
        with DubOutput(path, replace(info, width=2 * info.width + gap), audio, 0.0, [original, dubbed], facts=facts,
                       mark=False) as out:
            for a, b in zip(left, right):
                frame = np.hstack([a.image, np.zeros((info.height, gap, 3), a.image.dtype), b.image])
                for text, x in (("original", 8), ("dubbed", info.width + gap + 8)):
                    cv2.putText(frame, text, (x, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
                out.write(a.number, frame, None, dubbed=a.number in dubbed_frames)
