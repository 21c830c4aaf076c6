"""Locks that keep two renders from writing one output at once, and two processes from tracking one shot
at the same time.

They are the operating system's record locks (fcntl; msvcrt on Windows) on a hidden file beside the
output, not lock files whose existence means "busy": the system drops a lock when its process ends,
however it ends, so a killed render never blocks the next one. The hidden file goes when the last
holder lets go.

An image sequence is locked frame range by frame range, so farm chunks of one sequence run side by
side while two renders of the same frames do not; a video is locked whole.

POSIX record locks belong to a process: two locks taken by one process never exclude each other.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import MediaError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

# Byte offsets stand for frames: frame n is byte FRAME_BASE + n (frame numbers may be negative).
FRAME_BASE = 1 << 40
WHOLE = (0, 1 << 41)
_PRINTF_FRAME = re.compile(r"%0?(\d*)d")


def lock_path(path: Path) -> Path:
    """The hidden lock file of an output: one per video, one per sequence however its pattern is spelled."""
    name = _PRINTF_FRAME.sub(lambda m: "#" * int(m.group(1) or 1), Path(path).name)
    return Path(path).with_name(f".{name}.lock")


def _span(frames: tuple[int, int] | None) -> tuple[int, int]:
    return WHOLE if frames is None else (FRAME_BASE + frames[0], frames[1] - frames[0] + 1)


def _try_lock(fd: int, span: tuple[int, int]) -> bool:
    start, length = span
    try:
        if fcntl is not None:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
        else:
            os.lseek(fd, start, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, length)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EAGAIN, errno.EDEADLK):
            return False
        raise
    return True


def _unlock(fd: int, span: tuple[int, int]) -> None:
    start, length = span
    if fcntl is not None:
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET)
    else:
        os.lseek(fd, start, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, length)


def _holder(fd: int, span: tuple[int, int]) -> int | None:
    """The process id holding a lock over `span`, where the system tells (Linux, macOS)."""
    layouts = {"linux": ("hhqqi4x", lambda t, s, n: (t, os.SEEK_SET, s, n, 0), 4),
               "darwin": ("qqihh", lambda t, s, n: (s, n, 0, t, os.SEEK_SET), 2)}
    layout = layouts.get(sys.platform)
    if fcntl is None or layout is None:
        return None
    form, fields, pid_at = layout
    query = struct.pack(form, *fields(fcntl.F_WRLCK, *span))
    try:
        answer = struct.unpack(form, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError:
        return None
    return answer[pid_at] or None


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` is still the file `fd` has open: the last holder may have removed it meanwhile."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _release(fd: int, path: Path, span: tuple[int, int]) -> None:
    # The lock file goes only when nobody else holds any part of it (the whole of it is then free).
    if _try_lock(fd, WHOLE):
        path.unlink(missing_ok=True)
        _unlock(fd, WHOLE)
    else:
        _unlock(fd, span)
    os.close(fd)


@contextmanager
def output_lock(output: Path, frames: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold `output` (a video, or frames `frames` of a sequence) for one render; a MediaError naming the
    other render when it is held already."""
    path = lock_path(output)
    span = _span(frames)
    while True:
        try:
            fd = _open(path)
        except OSError as error:
            raise MediaError(f"{output}: cannot write in {path.parent} ({error.strerror}); choose another output folder") from None
        if not _try_lock(fd, span):
            holder = _holder(fd, span)
            os.close(fd)
            which = f"frames {frames[0]}-{frames[1]} of " if frames else ""
            by = f" (pid {holder})" if holder else ""
            raise MediaError(f"another render is writing {which}{output}{by}; wait for it to finish or choose another -o")
        if _same_file(fd, path):
            break
        os.close(fd)  # taken on a lock file its last holder had just removed: take the new one
    try:
        yield
    finally:
        _release(fd, path, span)


@contextmanager
def cache_lock(cache: Path, poll: float = 0.2) -> Iterator[None]:
    """Wait for and hold the lock of a cache file (a shot's face track), so that a second process waits for
    the first one's result instead of computing it again. Where the cache's folder cannot be written the
    cache is not written either, and nothing is locked."""
    path = lock_path(cache)
    while True:
        try:
            fd = _open(path)
        except OSError:
            yield
            return
        while not _try_lock(fd, WHOLE):
            time.sleep(poll)
        if _same_file(fd, path):
            break
        os.close(fd)
    try:
        yield
    finally:
        _release(fd, path, WHOLE)
