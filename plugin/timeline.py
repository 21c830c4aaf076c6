"""The timeline under the viewer: frame ruler, playhead, mask key markers, painted frames, bypass
ranges and frames without a face. Click or drag to scrub."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

MARGIN = 12  # pixels left and right of the first and last frame

KEY_COLOUR = QColor(255, 210, 0)
PAINT_COLOUR = QColor(230, 80, 230)
BYPASS_COLOUR = QColor(120, 120, 140, 150)
NO_FACE_COLOUR = QColor(200, 50, 50)
PLAYHEAD_COLOUR = QColor(255, 70, 70)


class FrameScale:
    """Frame number <-> x position over a widget's width (shared by the timeline and the waveform)."""

    def __init__(self, first: int, last: int, width: int):
        self.first, self.last, self.width = first, last, width

    @property
    def step(self) -> float:
        return (self.width - 2 * MARGIN) / max(self.last - self.first, 1)

    def x(self, frame: float) -> float:
        return MARGIN + (frame - self.first) * self.step

    def frame(self, x: float) -> int:
        return int(round(min(max((x - MARGIN) / self.step + self.first, self.first), self.last)))


class Timeline(QWidget):
    frameRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(48)
        self.setMaximumHeight(56)
        self.first, self.last, self.current = 0, 0, 0
        self.keys: set[int] = set()
        self.painted: set[int] = set()
        self.bypass: list[tuple[int, int]] = []
        self.no_face: list[int] = []

    def scale(self) -> FrameScale:
        return FrameScale(self.first, self.last, self.width())

    def set_range(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.update()

    def set_current(self, frame: int) -> None:
        self.current = frame
        self.update()

    def set_marks(self, keys, painted, bypass, no_face) -> None:
        self.keys, self.painted, self.bypass, self.no_face = set(keys), set(painted), list(bypass), list(no_face)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(40, 40, 44))
        scale, height = self.scale(), self.height()
        half = scale.step / 2
        for first, last in self.bypass:
            painter.fillRect(QRectF(scale.x(first) - half, 0, scale.x(last) - scale.x(first) + 2 * half, height), BYPASS_COLOUR)
        for frame in self.no_face:
            painter.fillRect(QRectF(scale.x(frame) - half, height - 5, max(2 * half, 1), 5), NO_FACE_COLOUR)
        # Ruler: a tick every frame where there is room, labels every `every` frames.
        every = next(n for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9) if n * scale.step >= 40)
        painter.setPen(QColor(150, 150, 150))
        for frame in range(self.first, self.last + 1):
            x = scale.x(frame)
            if frame % every == 0 or frame in (self.first, self.last):
                painter.drawLine(QPointF(x, 0), QPointF(x, 10))
                if frame % every == 0:
                    painter.drawText(QRectF(x - 30, 10, 60, 14), Qt.AlignmentFlag.AlignCenter, str(frame))
            elif scale.step >= 4:
                painter.drawLine(QPointF(x, 0), QPointF(x, 4))
        for frame in self.painted:
            x = scale.x(frame)
            painter.fillRect(QRectF(x - 1.5, height - 16, 3, 9), PAINT_COLOUR)
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(QBrush(KEY_COLOUR))
        for frame in self.keys:
            x, y = scale.x(frame), height - 21
            painter.drawPolygon(QPolygonF([QPointF(x, y - 5), QPointF(x + 5, y), QPointF(x, y + 5), QPointF(x - 5, y)]))
        x = scale.x(self.current)
        painter.setPen(QPen(PLAYHEAD_COLOUR, 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, height))

    def mousePressEvent(self, event) -> None:
        self.frameRequested.emit(self.scale().frame(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.frameRequested.emit(self.scale().frame(event.position().x()))
