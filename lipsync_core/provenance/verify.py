"""`lipsync verify MEDIA`: what a dubbed file says about itself, and whether it still holds.

Three witnesses, each read on its own so that one stripped does not hide the others: the C2PA manifest of a video
(signature and whole-file hash checked) or of an image sequence (its sidecar `NAME.ext.c2pa`: signature checked, every
frame hashed again against the signed index), the facts in every frame of a sequence, and the watermark voted over
the frames' pixels (it survives re-encoding and resizing that drop the metadata)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..media.frames import IMAGE_EXTENSIONS, _ranges_text, open_plate, sequence_files
from ..media.images import read_image
from . import watermark
from .credentials import Credentials, read_credentials
from .facts import PREFIX, frame_facts
from .sequence import FrameCheck, read_sequence_credentials

# Exit statuses: the media's claims hold / a claim is there but broken (tampered) / the media claims nothing.
VALID, BROKEN, NOTHING = 0, 1, 3


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="show what a dubbed file says it is (content credentials, frame facts, watermark) and check it",
        description="Read the C2PA content credentials of a video, or of an EXR/PNG sequence from its sidecar NAME.ext.c2pa "
        "(is the manifest valid, who signed it, which model, audio and plate, which frames were dubbed; for a "
        "sequence, which frames were changed, are missing or were added since signing), the facts in each frame of "
        f"a sequence, and the invisible watermark in the pixels. Exit status {VALID}: the media says it is a dub and "
        f"that holds; {BROKEN}: it says so but its credentials fail (the file, or a frame of the sequence, was "
        f"changed after signing); {NOTHING}: it claims nothing (no credentials, no facts, no watermark).",
    )
    parser.add_argument("media", help="video file, image sequence pattern (out.####.exr) or one frame of it")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = verify(args.media)
    for line in result.lines():
        print(line)
    return result.status


@dataclass
class Verification:
    media: Path
    credentials: Credentials | None = None
    sidecar: Path | None = None  # where a sequence's credentials came from
    frame_check: FrameCheck | None = None  # a sequence's signed frame index against its frames on disk
    frame_facts: dict[int, dict[str, str]] = field(default_factory=dict)  # sequence frame -> its lipsync.* text
    mark: watermark.Reading | None = None
    frames_read: int = 0

    @property
    def status(self) -> int:
        if self.credentials is not None and not self.credentials.valid:
            return BROKEN
        if self.frame_check is not None and self.frame_check.changed:
            return BROKEN
        if self.credentials is None and not self.frame_facts and not (self.mark and self.mark.found):
            return NOTHING
        return VALID

    def lines(self) -> list[str]:
        lines = [f"{self.media}:"]
        found = self.credentials
        if found is None:
            lines.append("  content credentials: none")
        else:
            trust = "a trusted signer" if found.trusted else "a signer on no trust list here"
            where = f" (sidecar {self.sidecar.name})" if self.sidecar else ""
            lines.append(f"  content credentials{where}: {'valid' if found.valid else 'INVALID'}, signed by "
                         f"{found.signer or '?'} ({trust})")
            lines += [f"    failed: {failure}" for failure in found.failures]
            for action in found.actions:
                source = action.get("digitalSourceType", "").rsplit("/", 1)[-1]
                lines.append(f"  action: {action.get('action')}" + (f" ({source})" if source else ""))
            if found.dub:
                dub = found.dub
                lines.append(f"  tool: {dub['tool']['name']} {dub['tool']['version']}")
                lines.append(f"  model: {dub['model']['name']} sha256:{dub['model']['sha256']} (mouth: {dub['model']['mouth']})")
                if "renderer" in dub:
                    lines.append(f"  renderer: {dub['renderer']['name']} sha256:{dub['renderer']['sha256']}")
                lines.append(f"  audio: {dub['audio']['name']} sha256:{dub['audio']['sha256']}")
                lines.append(f"  plate: {dub['plate']['name']} sha256:{dub['plate']['sha256']}")
                ranges = ", ".join(f"{r['first']}-{r['last']}" if r["first"] != r["last"] else str(r["first"])
                                   for r in dub["dubbed_frames"]) or "none"
                lines.append(f"  dubbed frames: {ranges} (of {dub['render']['first']}-{dub['render']['last']})")
        if self.frame_check is not None and not found.valid:
            lines.append("  signed frames: not checked (the index is part of the invalid manifest)")
        elif self.frame_check is not None:
            check = self.frame_check
            lines.append(f"  signed frames: {check.signed}, " + ("all unchanged" if not (check.changed or check.missing)
                                                                    else f"{check.signed - len(check.changed) - len(check.missing)} unchanged"))
            for what, numbers in (("CHANGED since signing", check.changed), ("missing", check.missing),
                                  ("not in the credentials (added)", check.extra)):
                if numbers:
                    lines.append(f"    {what}: {_ranges_text(numbers)}")
        if self.frame_facts:
            first = next(iter(self.frame_facts.values()))
            dubbed = sorted(n for n, text in self.frame_facts.items() if text.get(f"{PREFIX}dubbed") == "yes")
            lines.append(f"  frame facts: in {len(self.frame_facts)} frames")
            for name in ("tool", "model", "renderer", "audio", "plate"):
                if name == "renderer" and PREFIX + name not in first:
                    continue
                lines.append(f"  {name}: {first.get(PREFIX + name, '?')}")
            lines.append(f"  dubbed frames: {_ranges_text(dubbed) or 'none'}")
        elif self.credentials is None:
            lines.append("  frame facts: none")
        if self.mark is not None:
            if self.mark.found:
                bits = "".join(map(str, self.mark.bits))
                lines.append(f"  watermark: found, model sha256 prefix {self.mark.model_prefix} "
                             f"(bits {bits}, voted over {self.frames_read} frames)")
                claimed = (found.dub or {}).get("model", {}).get("sha256", "") if found else ""
                if claimed and not claimed.startswith(self.mark.model_prefix):
                    lines.append(f"  watermark names another model than the credentials ({claimed[:4]})")
            else:
                lines.append(f"  watermark: not found in {self.frames_read} frames")
        return lines


def claims(media: str | Path) -> str:
    """One line of what the media's metadata says, without reading its pixels (quick enough for the panel to show
    on opening a file); empty when it claims nothing. A sequence's frames are not hashed again here: its sidecar's
    signature is checked, and `lipsync verify` checks the frames."""
    media = Path(media)
    sequence = media.suffix.lower() in IMAGE_EXTENSIONS
    if sequence:
        signed = read_sequence_credentials(media, rehash=False)
        if signed is None:
            files = sequence_files(media)
            text = frame_facts(files[min(files)])
            if f"{PREFIX}tool" not in text:
                return ""
            return f"a dub: {text[PREFIX + 'tool']}, model {text.get(PREFIX + 'model', '?').split(' ')[0]} (frame facts, unsigned)"
        sidecar, found, _ = signed
    else:
        found = read_credentials(media)
    if found is None:
        return ""
    if not found.valid:
        return "content credentials INVALID: changed after signing (lipsync verify says what failed)"
    dub = found.dub or {}
    what = f"a dub: {dub['tool']['name']} {dub['tool']['version']}, model {dub['model']['name']}" if dub else "edited"
    trust = "trusted signer" if found.trusted else "signer on no trust list"
    where = f" in {sidecar.name}, frames not checked here" if sequence else ""
    return f"{what} (content credentials valid{where}, {trust}: {found.signer})"


def verify(media: str | Path) -> Verification:
    media = Path(media)
    result = Verification(media)
    decoder = watermark.Decoder()
    if media.suffix.lower() in IMAGE_EXTENSIONS:
        # Frame by frame, not as a plate: a sequence with a frame missing is still read (and the gap reported).
        files = sequence_files(media)
        for number, file in files.items():
            facts = frame_facts(file)
            if facts:
                result.frame_facts[number] = facts
        signed = read_sequence_credentials(media)
        if signed is not None:
            result.sidecar, result.credentials, result.frame_check = signed
        for file in files.values():
            decoder.add(read_image(file))
        result.frames_read = len(files)
    else:
        result.credentials = read_credentials(media)
        with open_plate(media) as plate:
            for frame in plate:
                decoder.add(frame.image)
                result.frames_read += 1
    result.mark = decoder.reading()
    return result
