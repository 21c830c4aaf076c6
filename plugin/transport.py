"""Play/pause, frame stepping, the frame number and zoom buttons, and the sound played with the frames.

Playback runs on a timer at the plate's rate. While sound is heard, the audio clock leads: each tick
shows the frame being heard, so picture and sound stay together. Without sound (no audio output
device, the dub audio ended, or no Qt Multimedia) each tick shows the next frame, and frames that take
longer to decode slow playback down rather than being skipped.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QStyle, QToolButton, QWidget

from .document import ShotDocument
from .viewer import Viewer

try:  # Qt Multimedia ships in PySide6-Addons (a dependency); it also needs PulseAudio's client library
    from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
except ImportError:  # pragma: no cover - depends on the installed wheels and system libraries
    QMediaPlayer = None


SP = QStyle.StandardPixmap
PLAY = SP.SP_MediaPlay


def audio_output_present() -> bool:
    """Whether the system has an audio output device (none on CI machines and most servers)."""
    return bool(QMediaDevices.audioOutputs())


def sound_source(document: ShotDocument) -> tuple[Path, int, str] | None:
    """What plays with the frames: (file, the frame at the file's time 0, a name for it). The dub audio
    starts at the shot's first frame; a video plate's own audio is on the frames' own timeline."""
    if document.shot.audio_path is not None:
        return document.shot.audio_path, document.range[0], "the dub audio"
    if document.info.kind == "video" and document.info.audio:
        return document.shot.plate, 0, "the plate's audio"
    return None


class Sound(QObject):
    """A media player for the sound of the frames. Qt Multimedia loads a source asynchronously and
    ignores a position set before it is loaded, so a seek is kept until the source is loaded, then
    applied once and playback (re)started from there."""

    LOADED = () if QMediaPlayer is None else (
        QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferingMedia,
        QMediaPlayer.MediaStatus.BufferedMedia, QMediaPlayer.MediaStatus.EndOfMedia)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.player = None
        self.error = ""  # the player's error on its current source
        self.active = False  # started and not stopped since
        self.origin = 0  # the frame heard at the source's time 0
        self._seek: int | None = None  # ms, waiting for the source to be loaded
        if QMediaPlayer is not None:
            self.player = QMediaPlayer(self)
            self.output = QAudioOutput(self)
            self.player.setAudioOutput(self.output)
            self.player.mediaStatusChanged.connect(self._status)
            self.player.errorOccurred.connect(self._error)

    def start(self, path: Path, origin: int, frame: int, fps: float) -> None:
        """Play `path` from `frame`'s time."""
        url = QUrl.fromLocalFile(str(path))
        self.origin, self.active = origin, True
        self.output.setDevice(QMediaDevices.defaultAudioOutput())  # the default may have changed
        if self.player.source() != url:
            self.error = ""
            self.player.setSource(url)
        self.seek(frame, fps)

    def seek(self, frame: int, fps: float) -> None:
        self._seek = int(round(max(frame - self.origin, 0) / fps * 1000))
        self._status(self.player.mediaStatus())

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.player.pause()

    def failed(self, path: Path) -> str:
        """Why `path` cannot be played, if the player tried and could not."""
        return self.error if self.player.source() == QUrl.fromLocalFile(str(path)) else ""

    @property
    def waiting(self) -> bool:
        """Started, with its source still loading."""
        return self.active and self._seek is not None

    def heard(self, fps: float) -> int | None:
        """The frame being heard now; None when no sound is playing (not started, ended, failed)."""
        if not self.active or self.player.playbackState() != QMediaPlayer.PlaybackState.PlayingState:
            return None
        return self.origin + int(self.player.position() / 1000 * fps + 1e-6)

    def _status(self, status) -> None:
        if not self.active or self._seek is None or status not in self.LOADED:
            return
        position, self._seek = self._seek, None
        if 0 < self.player.duration() <= position:
            # Past the end of the sound (a dub shorter than the shot): the frames play on in silence.
            # play() here would start the sound over from its beginning.
            self.player.pause()
            return
        self.player.setPosition(position)
        self.player.play()

    def _error(self, error, text: str) -> None:
        self.error = text or str(error)
        self.stop()


class Transport(QWidget):
    def __init__(self, document: ShotDocument, viewer: Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.document, self.viewer = document, viewer
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.sound = Sound(self)
        self._advancing = False  # the timer is moving the frame (not the user: no seek then)
        if self.sound.player is not None:
            self.sound.player.errorOccurred.connect(lambda *_: self._describe_sound())  # the frames play on, silent

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

        self.play = button("Play", "Play / pause, with the dub audio (or the plate's own)", self.toggle, "Space", PLAY)
        self.sound_label = QLabel()
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
        layout.addWidget(self.sound_label)
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
        document.edited.connect(self._describe_sound)  # the dub audio may have changed

    def _opened(self) -> None:
        self.stop()
        self._describe_sound()
        self.spin.blockSignals(True)
        self.spin.setRange(*self.document.range)
        self.spin.setValue(self.document.frame)
        self.spin.blockSignals(False)

    def _frame(self, frame: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(frame)
        self.spin.blockSignals(False)
        if self.sound.active and not self._advancing:
            self.sound.seek(frame, self.document.fps)  # scrubbed while playing: the sound follows

    def _describe_sound(self) -> bool:
        """Say in the sound label what playing will sound like; True when sound will be heard."""
        source = sound_source(self.document) if self.document.is_open else None
        if self.sound.player is None:
            text, audible = "No sound: Qt Multimedia is missing (PySide6-Addons, libpulse0)", False
        elif source is None:
            text, audible = "No sound: no dub audio, and the plate has none", False
        elif self.sound.failed(source[0]):
            text, audible = f"No sound: {self.sound.failed(source[0])}", False
        elif not audio_output_present():
            text, audible = f"No audio output: {source[2]} is not heard", False
        else:
            text, audible = f"Sound: {source[2]}", True
        self.sound_label.setText(text)
        return audible

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
        if self._describe_sound():
            path, origin, _ = sound_source(self.document)
            self.sound.start(path, origin, self.document.frame, self.document.fps)
        self.timer.start(max(1, int(round(1000 / self.document.fps))))
        self.play.setIcon(self.style().standardIcon(SP.SP_MediaPause))

    def stop(self) -> None:
        self.timer.stop()
        self.play.setIcon(self.style().standardIcon(PLAY))
        self.sound.stop()

    def _tick(self) -> None:
        if self.sound.waiting:
            return  # the frames wait for the sound to load, so that both start together
        heard = self.sound.heard(self.document.fps)
        frame = self.document.frame + 1 if heard is None else heard
        if frame > self.document.range[1]:
            self.stop()
            return
        self._advancing = True
        try:
            self.document.set_frame(frame)
        finally:
            self._advancing = False
