"""The dub audio's waveform under the timeline, frame-aligned with it, with the current frame marked."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .timeline import MARGIN, PLAYHEAD_COLOUR, FrameScale

WAVE_COLOUR = QColor(90, 170, 255)


class Waveform(QWidget):
    frameRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(56)
        self.setMaximumHeight(72)
        self.first, self.last, self.current, self.fps = 0, 0, 0, 24.0
        self.audio: np.ndarray | None = None
        self.rate = 16000
        self.label = "no dub audio: File > Open dub audio"
        self._envelope: tuple[int, np.ndarray, np.ndarray] | None = None

    def set_audio(self, audio: np.ndarray | None, rate: int, label: str) -> None:
        self.audio, self.rate, self.label, self._envelope = audio, rate, label, None
        self.update()

    def set_range(self, first: int, last: int, fps: float) -> None:
        self.first, self.last, self.fps, self._envelope = first, last, fps, None
        self.update()

    def set_current(self, frame: int) -> None:
        self.current = frame
        self.update()

    def resizeEvent(self, event) -> None:
        self._envelope = None

    def _sample(self, frame: float) -> int:
        """The dub sample at a frame's time (the dub starts at the shot's first frame)."""
        return int(round((frame - self.first) / self.fps * self.rate))

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel column: the min and max sample under it (cached per width)."""
        if self._envelope is None or self._envelope[0] != self.width():
            scale = FrameScale(self.first, self.last, self.width())
            xs = np.arange(self.width())
            edges = np.array([self._sample((x - MARGIN) / scale.step + self.first) for x in np.append(xs, self.width())])
            edges = np.clip(edges, 0, len(self.audio))
            low, high = np.zeros(len(xs)), np.zeros(len(xs))
            for i in range(len(xs)):
                a, b = edges[i], max(edges[i + 1], edges[i] + 1)
                if a < len(self.audio):
                    chunk = self.audio[a:b]
                    low[i], high[i] = chunk.min(), chunk.max()
            self._envelope = (self.width(), low, high)
        return self._envelope[1], self._envelope[2]

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        scale, height = FrameScale(self.first, self.last, self.width()), self.height()
        middle = height / 2
        if self.audio is not None and len(self.audio):
            # The audio the current frame's mel window hears (about +-0.1 s around its time).
            half = scale.step / 2
            painter.fillRect(QRectF(scale.x(self.current) - half, 0, 2 * half, height), QColor(255, 255, 255, 28))
            low, high = self.envelope()
            peak = max(float(np.abs(self.audio).max()), 1e-6)
            painter.setPen(QPen(WAVE_COLOUR, 1))
            for x, (a, b) in enumerate(zip(low, high)):
                if a or b:
                    painter.drawLine(QPointF(x + 0.5, middle - b / peak * (middle - 4)), QPointF(x + 0.5, middle - a / peak * (middle - 4)))
            end = scale.x(self.first + len(self.audio) / self.rate * self.fps)
            if end < self.width() - MARGIN:
                painter.fillRect(QRectF(end, 0, self.width() - end, height), QColor(60, 20, 20, 120))
        painter.setPen(QColor(140, 140, 150))
        painter.drawText(self.rect().adjusted(6, 2, -6, -2), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, self.label)
        x = scale.x(self.current)
        painter.setPen(QPen(PLAYHEAD_COLOUR, 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, height))

    def mousePressEvent(self, event) -> None:
        self.frameRequested.emit(FrameScale(self.first, self.last, self.width()).frame(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.mousePressEvent(event)
