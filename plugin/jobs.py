"""A `lipsync` CLI command run in a subprocess: a crash there cannot take the panel down, and a cancel
stops it cleanly. Progress comes as JSON lines on its stdout (`--progress-json`):

    {"stage": "render", "done": 12, "total": 75}          (more keys, e.g. "loss", are passed on)

Cancel asks the process to stop (QProcess.terminate: SIGTERM, on which `lipsync dub` stops between
frames and removes its partial output), then kills it if it has not stopped within `grace` seconds.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from lipsync_core.dub.worker import error_text

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def command_available(name: str, option: str | None = None) -> bool:
    """Whether this build's `lipsync` CLI has subcommand `name` (and, if given, its `option`)."""
    import argparse

    from lipsync_core.cli import build_parser

    try:
        parser = build_parser()
    except Exception:
        return False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            sub = action.choices[name]
            return option is None or any(option in a.option_strings for a in sub._actions)
    return False


class CliJob(QObject):
    progress = Signal(dict)
    output = Signal(str)  # a line of the command's ordinary output (its report)
    finished = Signal(bool, str)  # ok, message (the CLI's error, or "cancelled")

    def __init__(self, parent: QObject | None = None, grace: float = 60.0):
        super().__init__(parent)
        self.grace = grace
        self.process: QProcess | None = None
        self._stdout = b""
        self._stderr = b""
        self._cancelled = False
        self.lines: list[str] = []

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, arguments: list[str]) -> None:
        if self.process is not None:
            raise RuntimeError("a job is already running")
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        path = environment.value("PYTHONPATH", "")
        environment.insert("PYTHONPATH", str(REPO) + (os.pathsep + path if path else ""))
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        process.setWorkingDirectory(str(REPO))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._stdout, self._stderr, self._cancelled, self.lines = b"", b"", False, []
        self.process = process
        process.start(sys.executable, ["-m", "lipsync_core.cli", *arguments])

    def cancel(self) -> None:
        process = self.process
        if process is None or self._cancelled:
            return
        self._cancelled = True
        process.terminate()
        QTimer.singleShot(int(self.grace * 1000), lambda: self.process is process and process.kill())

    def _read_stdout(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("{"):
                try:
                    self.progress.emit(json.loads(line))
                    continue
                except json.JSONDecodeError:
                    pass
            if line:
                self.lines.append(line)
                self.output.emit(line)

    def _read_stderr(self) -> None:
        self._stderr += bytes(self.process.readAllStandardError())

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(False, f"could not start {sys.executable}: {self.process.errorString()}")

    def _finished(self, code: int, status) -> None:
        self._read_stdout()
        if self._cancelled:
            self._end(False, "cancelled")
        elif code == 0 and status == QProcess.ExitStatus.NormalExit:
            self._end(True, "")
        else:
            self._end(False, error_text(self._stderr.decode("utf-8", "replace"), code))

    def _end(self, ok: bool, message: str) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.deleteLater()
        self.finished.emit(ok, message)
