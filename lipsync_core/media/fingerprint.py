"""What a plate holds, in one short string: a cache made from a plate (the face track) records it, and is used
again only while the plate still gives the same string, so a plate replaced under the same name is never
served another plate's track."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .frames import open_plate, sequence_files


def plate_fingerprint(path: str | Path, frames: tuple[int, int]) -> str:
    """A digest of the plate's files over `frames` (inclusive; their sizes and modification times) and of the
    decoded first and last frame: any re-render, re-encode or copy of another take changes it."""
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    with open_plate(path, frames=frames) as plate:
        if plate.info.kind == "sequence":
            files = [file for number, file in sequence_files(path).items() if frames[0] <= number <= frames[1]]
        else:
            files = [path]
        for file in files:
            stat = file.stat()
            digest.update(f"{file.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    for number in sorted({frames[0], frames[1]}):
        with open_plate(path, frames=(number, number)) as plate:
            image = next(iter(plate)).image
        digest.update(f"{number} {image.shape} {image.dtype}\n".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()
