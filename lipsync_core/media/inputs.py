"""What an input file must be before a decoder reads it: a decoder's own words for a folder or an empty file
("Invalid data found when processing input") do not say what is wrong."""

from __future__ import annotations

from pathlib import Path

from ..errors import MediaError


def require_file(path: Path) -> None:
    """A one-line error for a path that is not there, is a folder, or is empty."""
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: is empty (0 bytes)")
