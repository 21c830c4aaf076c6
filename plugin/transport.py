"""Play/pause, frame stepping, the frame number and zoom buttons. Playback runs on a timer at the
plate's rate (frames that take longer to decode slow it down rather than being skipped). The dub
audio plays along where Qt Multimedia is installed (PySide6-Addons)."""

from __future__ import annotations

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QStyle, QToolButton, QWidget

from .document import ShotDocument
from .viewer import Viewer

try:  # Qt Multimedia ships in PySide6-Addons, not in PySide6-Essentials
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
except ImportError:  # pragma: no cover - depends on the installed wheels
    QMediaPlayer = None


SP = QStyle.StandardPixmap
PLAY = SP.SP_MediaPlay


class DubSound:
    """The dub audio, played from the current frame's time while the transport plays."""

    def __init__(self):
        self.available = QMediaPlayer is not None
        self._player = None
        if self.available:
            self._player = QMediaPlayer()
            self._output = QAudioOutput()
            self._player.setAudioOutput(self._output)

    def play(self, path, seconds: float) -> None:
        if self._player is None or path is None:
            return
        self._player.setSource(QUrl.fromLocalFile(str(path)))
        self._player.setPosition(int(max(seconds, 0) * 1000))
        self._player.play()

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()


class Transport(QWidget):
    def __init__(self, document: ShotDocument, viewer: Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.document, self.viewer = document, viewer
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.sound = DubSound()

        def button(text: str, tip: str, slot, shortcut: str | None = None, icon=None) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            if icon is not None:
                b.setIcon(self.style().standardIcon(icon))
            b.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
            if shortcut:
                b.setShortcut(shortcut)
            b.clicked.connect(slot)
            return b

        self.play = button("Play", "Play / pause" + ("" if self.sound.available else
                           " (video only: dub audio playback needs PySide6-Addons' Qt Multimedia)"), self.toggle, "Space", PLAY)
        self.spin = QSpinBox()
        self.spin.setRange(-10**7, 10**7)
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(document.set_frame)
        self.zoom_label = QLabel("fit")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(button("First", "First frame", lambda: document.set_frame(document.range[0]), "Home", SP.SP_MediaSkipBackward))
        layout.addWidget(button("Back", "Previous frame", lambda: document.set_frame(document.frame - 1), "Left", SP.SP_MediaSeekBackward))
        layout.addWidget(self.play)
        layout.addWidget(button("Next", "Next frame", lambda: document.set_frame(document.frame + 1), "Right", SP.SP_MediaSeekForward))
        layout.addWidget(button("Last", "Last frame", lambda: document.set_frame(document.range[1]), "End", SP.SP_MediaSkipForward))
        layout.addWidget(QLabel("Frame"))
        layout.addWidget(self.spin)
        layout.addStretch(1)
        layout.addWidget(QLabel("Zoom"))
        layout.addWidget(button("\u2212", "Zoom out", lambda: viewer.set_zoom(viewer.zoom / 1.25), "-"))
        layout.addWidget(self.zoom_label)
        layout.addWidget(button("+", "Zoom in", lambda: viewer.set_zoom(viewer.zoom * 1.25), "="))
        layout.addWidget(button("Fit", "Fit the frame in the viewer", lambda: viewer.set_zoom(None), "F"))
        layout.addWidget(button("1:1", "One plate pixel per screen pixel", lambda: viewer.set_zoom(1.0), "1"))
        viewer.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        document.frameChanged.connect(self._frame)
        document.opened.connect(self._opened)

    def _opened(self) -> None:
        self.stop()
        self.spin.blockSignals(True)
        self.spin.setRange(*self.document.range)
        self.spin.setValue(self.document.frame)
        self.spin.blockSignals(False)

    def _frame(self, frame: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(frame)
        self.spin.blockSignals(False)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle(self) -> None:
        self.stop() if self.playing else self.start()

    def start(self) -> None:
        if not self.document.is_open:
            return
        if self.document.frame >= self.document.range[1]:
            self.document.set_frame(self.document.range[0])
        self.timer.start(max(1, int(round(1000 / self.document.fps))))
        self.play.setIcon(self.style().standardIcon(SP.SP_MediaPause))
        self.sound.play(self.document.shot.audio_path, self.document.time(self.document.frame))

    def stop(self) -> None:
        self.timer.stop()
        self.play.setIcon(self.style().standardIcon(PLAY))
        self.sound.stop()

    def _tick(self) -> None:
        if self.document.frame >= self.document.range[1]:
            self.stop()
        else:
            self.document.set_frame(self.document.frame + 1)
