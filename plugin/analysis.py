"""Face analysis of the open shot (`lipsync_core.face.analyze`, the same operation as `lipsync analyze`)
in a worker thread, with progress and cancel: the UI never waits on it. The track is cached beside
the sidecar, where `lipsync dub` finds it too."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from lipsync_core.errors import LipSyncError
from lipsync_core.face.analyze import analyze


class _Cancelled(Exception):
    pass


class AnalysisWorker(QObject):
    progress = Signal(int, int)  # frames done, total
    finished = Signal(object)  # Track
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, plate: Path, sidecar: Path | None):
        super().__init__()
        self.plate, self.sidecar = plate, sidecar
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        def report(stage: str, done: int, total: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            self.progress.emit(done, total)

        try:
            track = analyze(self.plate, shot=self.sidecar, preview=False, progress=report).track
        except _Cancelled:
            self.cancelled.emit()
            return
        except LipSyncError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:  # a decoder or MediaPipe failure must not take the panel down
            self.failed.emit(f"face analysis failed: {type(error).__name__}: {error}")
            return
        self.finished.emit(track)


class Analysis(QObject):
    """Runs one AnalysisWorker at a time on its own thread."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: AnalysisWorker | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, plate: Path, sidecar: Path | None) -> None:
        """Analyze a plate (with its saved sidecar's range, when there is one)."""
        self.cancel()
        self.wait()
        worker = AnalysisWorker(plate, sidecar)
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self.progress)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)
        for signal in (worker.finished, worker.failed, worker.cancelled):
            signal.connect(thread.quit)
        thread.finished.connect(lambda: self._done(thread))
        self._thread, self._worker = thread, worker
        thread.start()

    def _done(self, thread: QThread) -> None:
        if thread is not self._thread:
            return  # an earlier run, already waited for
        thread.wait()
        thread.deleteLater()
        self._thread, self._worker = None, None

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._done(self._thread)
