"""Where a result goes: the checks made before any work (so a render never fails at its end for a reason
known at its start), and the one message for a disk that fills up while writing.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import MediaError

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def make_folder(path: Path) -> list[Path]:
    """Create the folder `path` goes in where it is missing (an output often goes to a new folder); return the
    folders created, outermost first, so that a failed render can take them away again."""
    folder = Path(path).parent
    missing = [parent for parent in [folder, *folder.parents] if not parent.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MediaError(f"{path}: {_first_file(folder)} is a file, not a folder; choose another output") from None
    except OSError as error:
        raise MediaError(f"{path}: cannot create the folder {folder} ({error.strerror}); choose another output") from None
    return missing


def remove_folders(created: list[Path]) -> None:
    """Remove the folders `make_folder` created that are still empty, innermost first."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty: something else lives there now


def check_writable(path: Path, needed: int) -> None:
    """That a file can be created beside `path` and that the disk has `needed` bytes free; and that `path`
    is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path} is a folder: give the output a file name, e.g. {path / 'dub.mp4'}")
    try:
        with tempfile.TemporaryFile(dir=path.parent, prefix=".lipsync-check-"):
            pass
    except OSError as error:
        raise MediaError(f"{path}: cannot write in {path.parent} ({error.strerror}); choose another output folder") from None
    if shutil.disk_usage(path.parent).free < needed:
        raise MediaError(disk_full(path))


def disk_full(path: Path) -> str:
    """'PATH: disk full: 12 MB free on /mnt/renders; ...'"""
    folder = _existing(Path(path).parent)
    return (f"{path}: disk full: {_size(shutil.disk_usage(folder).free)} free on {_mount(folder)}; "
            "free some space or write elsewhere")


def write_failed(path: Path, error: OSError) -> MediaError:
    """The MediaError for a write that failed: 'disk full' said as such, anything else with its reason."""
    if getattr(error, "errno", None) in _FULL:
        return MediaError(disk_full(path))
    return MediaError(f"{path}: cannot write ({getattr(error, 'strerror', None) or error})")


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    for unit in ("KB", "MB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} GB"


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _first_file(folder: Path) -> Path:
    return next(parent for parent in [*reversed(folder.parents), folder] if parent.is_file())


def _mount(folder: Path) -> Path:
    """The mount point the folder lives on: the device a user frees space on."""
    folder = folder.resolve()
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return folder
