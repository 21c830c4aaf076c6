"""What a user sees when the code fails in a way no check foresaw (a bug): one line naming the error and a
log file holding the full traceback, for the report. `lipsync --debug ...` prints the traceback instead.

Logs go to $XDG_CACHE_HOME/lipsync/logs (~/.cache/lipsync/logs), or the temporary folder where that
cannot be written.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path


def log_folder() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lipsync" / "logs"


def write_log(error: BaseException, command: str) -> Path | None:
    """The traceback of `error` in a new log file; None when no folder can take it."""
    name = f"lipsync-{command.replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(error))
    for folder in (log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def unexpected(error: BaseException, command: str) -> str:
    """One line for an unexpected error, its traceback written to a log whose path it gives."""
    log = write_log(error, command)
    where = f"the full traceback is in {log}" if log else "no log could be written"
    text = " ".join(str(error).split()) or "(no message)"
    return f"unexpected {type(error).__name__}: {text} ({where}; please report it, or run again with --debug to print it)"
