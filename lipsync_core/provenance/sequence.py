"""C2PA content credentials for an image sequence: a standalone manifest store beside it, `NAME.ext.c2pa`.

C2PA binds a manifest to the bytes of one asset, and a sequence is many files, so the asset signed is the sequence's
frame index: each frame's number, file name and SHA-256, as compact JSON (what C2PA's collection data hash does for a
set of files; c2pa-python's Builder cannot make that assertion). The manifest carries the claims of a dubbed movie
(`credentials.manifest_definition`) and the index itself as the `org.lipsync.frames` assertion; nothing is embedded
in the frames (`Builder.set_no_embed`: the manifest store c2pa returns is the sidecar).

Reading builds the index again from the frames on disk and lets c2pa check the signature and the binding. When the
binding fails, the signed index compared with the one on disk says which frames were changed, are missing or are
extra; the claims themselves still hold when the signature's own checks pass, so the manifest is reported valid and
the frames apart.

A sequence is signed once it is complete (`missing` is empty): after a whole render, after the chunk that renders its
last frame, or by `lipsync farm assemble`. The sidecar is written aside and renamed into place, so a reader never
sees half of one, and a render that writes frames into a signed sequence removes it first (`unsign`).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MediaError
from ..media.destination import write_failed
from ..media.frames import _ranges_text, sequence_files, sequence_name
from ..media.writers import _temporary
from .credentials import Credentials, manifest_definition, read_manifest, signer, signing_failed
from .facts import PREFIX, DubFacts, file_sha256, frame_facts, plate_sha256
from .identity import SigningIdentity

FRAMES_LABEL = "org.lipsync.frames"
INDEX_FORMAT = "application/json"
BINDING_MISMATCH = "assertion.dataHash.mismatch"
SAME_DUB = ("tool", "model", "mouth", "renderer", "audio")  # what every frame of one signed sequence must share


def sidecar_path(media: Path) -> Path:
    """`NAME.ext.c2pa` beside the sequence `NAME.####.ext`, named by its pattern or by any one of its frames. The
    extension is in the name: an EXR sequence and its PNG proxies of the same name, side by side, each keep theirs."""
    prefix, _, suffix = sequence_name(media) or (media.stem, 0, media.suffix)
    return media.with_name(".".join(part for part in (prefix.rstrip("._-"), suffix.lstrip(".")) if part) + ".c2pa")


def frame_index(files: dict[int, Path]) -> list[dict]:
    return [{"frame": number, "name": file.name, "sha256": file_sha256(file)} for number, file in sorted(files.items())]


def _asset(index: list[dict]) -> bytes:
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def missing(output: Path, span: tuple[int, int]) -> list[int]:
    """The frames of `span` the sequence `output` does not have yet (frames are written whole or not at all)."""
    try:
        files = sequence_files(output)
    except MediaError:
        files = {}
    return [n for n in range(span[0], span[1] + 1) if n not in files]


def unsign(output: Path) -> None:
    """Remove the sidecar of a sequence whose frames are about to change: it would no longer describe them."""
    sidecar_path(output).unlink(missing_ok=True)


def seal(output: Path, plate: Path, plate_is_sequence: bool, span: tuple[int, int], identity: SigningIdentity) -> Path:
    """Sign the complete sequence `output` over `span` (a dub of `plate`) with a sidecar, from the facts its frames
    carry; an error when frames are missing or were made by another dub."""
    absent = missing(output, span)
    if absent:
        raise MediaError(f"{output}: frames {_ranges_text(absent)} are not rendered yet: the sequence cannot be signed")
    files = {n: file for n, file in sequence_files(output).items() if span[0] <= n <= span[1]}
    texts = {n: frame_facts(file) for n, file in files.items()}
    first = texts[span[0]]
    others = [n for n, text in texts.items() if any(text.get(PREFIX + key) != first.get(PREFIX + key) for key in SAME_DUB)]
    if others:
        raise MediaError(f"{output}: frames {_ranges_text(others)} were made by another dub than frame {span[0]} (tool, "
                         "model, mouth, renderer or audio): render them again with one dub before the sequence can be signed")
    try:
        facts = DubFacts.of_frame_text(first, plate, plate_sha256(plate, span, plate_is_sequence), span)
    except (KeyError, ValueError) as error:
        raise MediaError(f"{files[span[0]]}: carries no dub facts ({error}): render it with this version of lipsync") from None
    dubbed = [n for n, text in texts.items() if text.get(PREFIX + "dubbed") == "yes"]
    index = frame_index(files)
    definition = manifest_definition(output.name, facts, dubbed)
    definition["assertions"].append({"label": FRAMES_LABEL, "data": {"frames": index}})
    return _write(sidecar_path(output), definition, index, identity)


def _write(sidecar: Path, definition: dict, index: list[dict], identity: SigningIdentity) -> Path:
    import c2pa

    temporary = _temporary(sidecar)
    try:
        with signer(identity) as key, c2pa.Builder(definition) as builder:
            builder.set_no_embed()
            store = builder.sign(key, INDEX_FORMAT, io.BytesIO(_asset(index)), io.BytesIO())
        temporary.write_bytes(store)
        os.replace(temporary, sidecar)
    except c2pa.C2paError as error:
        raise signing_failed(definition["title"], identity, error) from None
    except OSError as error:
        raise write_failed(sidecar, error) from None
    finally:
        temporary.unlink(missing_ok=True)
    return sidecar


@dataclass
class FrameCheck:
    """The signed frame index against the frames on disk (frame numbers)."""
    signed: int
    changed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)


def read_sequence_credentials(media: Path, rehash: bool = True) -> tuple[Path, Credentials, FrameCheck | None] | None:
    """(the sidecar, its manifest checked, its frames checked) for the sequence `media`; None without a sidecar.
    `rehash` False: the signature alone, without hashing the frames (FrameCheck None)."""
    import c2pa

    sidecar = sidecar_path(media)
    if not sidecar.is_file():
        return None
    store = sidecar.read_bytes()
    on_disk = frame_index(sequence_files(media)) if rehash else []
    credentials = read_manifest(lambda: c2pa.Reader(INDEX_FORMAT, io.BytesIO(_asset(on_disk)), store))
    if credentials is None:
        return None
    signed = credentials.assertions.get(FRAMES_LABEL, {}).get("frames", [])
    check = _compare(signed, on_disk) if rehash else None
    # The binding fails whenever the frames differ from the signed index (and always without the frames): that is
    # the frames' report, not the manifest's. Anything else failing is.
    if signed and (check is None or check.changed or check.missing or check.extra):
        failures = [f for f in credentials.failures if not f.startswith(BINDING_MISMATCH)]
        if failures != credentials.failures:
            credentials.failures, credentials.valid = failures, not failures
    return sidecar, credentials, check


def _compare(signed: list[dict], on_disk: list[dict]) -> FrameCheck:
    claimed = {entry["name"]: entry for entry in signed}
    present = {entry["name"]: entry for entry in on_disk}
    return FrameCheck(
        signed=len(signed),
        changed=sorted(e["frame"] for name, e in claimed.items() if name in present and present[name]["sha256"] != e["sha256"]),
        missing=sorted(e["frame"] for name, e in claimed.items() if name not in present),
        extra=sorted(e["frame"] for name, e in present.items() if name not in claimed),
    )
