"""Keeping MediaPipe's own log lines (TFLite's "Created TensorFlow Lite XNNPACK delegate", absl's
"W0000 ... inference_feedback_manager.cc" and its "InitializeLog" warning) away from the user.

They are written by native code, some from MediaPipe's worker threads while frames are processed, straight
to file descriptor 2: no Python logger or environment variable reaches all of them. So while a face tracker
exists, descriptor 2 goes to the null device, and Python's own stderr (progress bars, messages) is kept on
the real one through a descriptor of its own.
"""

from __future__ import annotations

import io
import os
import sys


class NativeStderrSilenced:
    """Between `start()` and `stop()`, native writes to descriptor 2 are dropped; Python's `sys.stderr` is not."""

    def __init__(self):
        self._saved: int | None = None
        self._python_stderr = None

    def start(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        if _writes_to_descriptor_2(sys.stderr):
            self._python_stderr = sys.stderr
            sys.stderr = open(os.dup(self._saved), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def stop(self) -> None:
        if self._saved is None:
            return
        if self._python_stderr is not None:
            sys.stderr.close()
            sys.stderr, self._python_stderr = self._python_stderr, None
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None


def _writes_to_descriptor_2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, io.UnsupportedOperation, ValueError):
        return False  # a replacement (a test's capture, a host's console) that does not write to descriptor 2
