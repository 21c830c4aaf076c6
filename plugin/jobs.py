"""A `lipsync` CLI command run in a subprocess: a crash there cannot take the panel down, and a cancel
stops it cleanly. Progress comes as JSON lines on its stdout (`--progress-json`):

    {"stage": "render", "done": 12, "total": 75}          (more keys, e.g. "loss", are passed on)
    {"line": "wrote out.mp4"}                              (a line of the report, as if printed)

Cancel asks the process to stop (QProcess.terminate: SIGTERM, on which `lipsync dub` stops between
frames and removes its partial output), then kills it if it has not stopped within `grace` seconds.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

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
                    message = json.loads(line)
                except json.JSONDecodeError:
                    message = None
                if isinstance(message, dict) and "line" in message:
                    line = str(message["line"])  # a line of the report, sent as JSON
                elif message is not None:
                    self.progress.emit(message)
                    continue
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


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class Rate:
    """Frames per second and ETA of the stage running, from its progress reports. A stage is timed from
    where the one before it ended (or from the start): the model renders a batch of frames at once and
    reports them together, so the time between two reports says little."""

    def __init__(self, now: float | None = None):
        self.stage = None
        self.started = self.last = time.monotonic() if now is None else now

    def update(self, stage: str, done: int, total: int, now: float | None = None) -> tuple[float | None, float | None]:
        now = time.monotonic() if now is None else now
        if stage != self.stage:
            self.stage, self.started = stage, self.last
        self.last = now
        elapsed = now - self.started
        if elapsed <= 0 or done <= 0:
            return None, None
        fps = done / elapsed
        return fps, (total - done) / fps


class JobPanel(QWidget):
    """A tab that runs one `CliJob` at a time: its start and Cancel buttons, progress bar and status line,
    and what they do when a job starts, is cancelled and ends (the subclass lays them out)."""

    def __init__(self, start_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.job = CliJob(self)
        self.rate = Rate()
        self.start = QPushButton(start_text)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.cancel.clicked.connect(self.stop)
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self.job.running

    def begin(self, arguments: list[str]) -> None:
        """Start `lipsync ARGUMENTS`; the bar is busy until the first progress report."""
        self.progress.setRange(0, 0)
        self.status.setText("Starting\u2026")
        self.start.setEnabled(False)
        self.cancel.setEnabled(True)
        self._started = time.monotonic()
        self.rate = Rate()
        self.job.start(arguments)

    def advance(self, report: dict) -> tuple[str, int, int, float | None, float | None]:
        """Move the bar to a progress report; returns its stage, done and total, the rate and the ETA (s)."""
        stage, done, total = report.get("stage", ""), int(report.get("done", 0)), int(report.get("total", 0))
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        return (stage, done, total, *self.rate.update(stage, done, total))

    def stop(self) -> None:
        if self.job.running:
            self.status.setText("Cancelling\u2026")
            self.cancel.setEnabled(False)
            self.job.cancel()

    def ended(self, ok: bool) -> str:
        """Controls back to idle after a job; returns how long it ran (h:mm:ss)."""
        self.start.setEnabled(True)
        self.cancel.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if ok else 0)
        return format_seconds(time.monotonic() - self._started)
