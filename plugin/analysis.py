"""Face analysis of the open shot in a worker thread, with progress and cancel: the UI never waits
on it. The track is cached beside the sidecar, where `lipsync dub` finds it too."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from lipsync_core.errors import LipSyncError
from lipsync_core.face.tracker import track_plate


class _Cancelled(Exception):
    pass


class AnalysisWorker(QObject):
    progress = Signal(int, int)  # frames done, total
    finished = Signal(object)  # Track
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, plate: Path, frames: tuple[int, int], cache: Path):
        super().__init__()
        self.plate, self.frames, self.cache = plate, frames, cache
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        total = self.frames[1] - self.frames[0] + 1

        def report(done: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            self.progress.emit(done, total)

        try:
            track = track_plate(self.plate, frames=self.frames, progress=report)
        except _Cancelled:
            self.cancelled.emit()
            return
        except LipSyncError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:  # a decoder or MediaPipe failure must not take the panel down
            self.failed.emit(f"face analysis failed: {type(error).__name__}: {error}")
            return
        try:
            track.save(self.cache)
        except OSError:
            pass  # a read-only shot folder: the panel works on, the render tracks again
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

    def start(self, plate: Path, frames: tuple[int, int], cache: Path) -> None:
        self.cancel()
        self.wait()
        worker = AnalysisWorker(plate, frames, cache)
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self.progress)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)
        for signal in (worker.finished, worker.failed, worker.cancelled):
            signal.connect(thread.quit)
        thread.finished.connect(self._done)
        self._thread, self._worker = thread, worker
        thread.start()

    def _done(self) -> None:
        if self._thread is not None:
            self._thread.wait()
            self._thread.deleteLater()
        self._thread, self._worker = None, None

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._done()
