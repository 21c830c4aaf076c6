"""Original | dubbed, side by side or with a wipe, on the current frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from lipsync_core.media.frames import open_plate

from .frames import FrameCache
from .viewer import to_qimage


class DubbedSource:
    """The frames of a render, by plate frame number (a video render numbers its frames from 0)."""

    def __init__(self, path: str | Path, first: int, last: int):
        path = Path(path)
        with open_plate(path) as plate:
            info = plate.info
        self.path, self.first, self.last = path, first, last
        self.offset = info.first - first if info.kind == "video" else 0
        self.frames = FrameCache(path, info)
        self.info = info

    def image(self, frame: int) -> np.ndarray | None:
        number = frame + self.offset
        if not (self.first <= frame <= self.last and self.info.first <= number <= self.info.last):
            return None
        return self.frames.image(number)


class CompareView(QWidget):
    SIDE, WIPE = "side by side", "wipe"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.mode = self.SIDE
        self.wipe = 0.5
        self._original: QImage | None = None
        self._dubbed: QImage | None = None
        self.note = "Render the shot to compare original and dubbed"

    def set_images(self, original: np.ndarray | None, dubbed: np.ndarray | None, note: str = "") -> None:
        self._original = to_qimage(original) if original is not None else None
        self._dubbed = to_qimage(dubbed) if dubbed is not None else None
        self.note = note
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 32))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._original is None:
            return
        if self.mode == self.SIDE:
            half = self.width() / 2
            self._draw(painter, self._original, QRectF(0, 0, half - 2, self.height()), "original")
            if self._dubbed is not None:
                self._draw(painter, self._dubbed, QRectF(half + 2, 0, half - 2, self.height()), "dubbed")
        else:
            target = self._fit(self._original, QRectF(self.rect()))
            painter.drawImage(target, self._original)
            if self._dubbed is not None:
                x = target.left() + self.wipe * target.width()
                painter.save()
                painter.setClipRect(QRectF(target.left(), target.top(), x - target.left(), target.height()))
                painter.drawImage(target, self._dubbed)
                painter.restore()
                painter.setPen(QPen(QColor(255, 255, 255), 2))
                painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
                self._label(painter, QRectF(target.left(), target.top(), x - target.left(), 24), "dubbed")
                self._label(painter, QRectF(x, target.top(), target.right() - x, 24), "original")
        if self.note:
            painter.setPen(QColor(255, 200, 120))
            painter.drawText(self.rect().adjusted(10, 8, -10, -8), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft, self.note)

    @staticmethod
    def _fit(image: QImage, area: QRectF) -> QRectF:
        scale = min(area.width() / image.width(), area.height() / image.height())
        width, height = image.width() * scale, image.height() * scale
        return QRectF(area.center().x() - width / 2, area.center().y() - height / 2, width, height)

    def _draw(self, painter: QPainter, image: QImage, area: QRectF, label: str) -> None:
        target = self._fit(image, area)
        painter.drawImage(target, image)
        self._label(painter, QRectF(target.left(), target.top(), target.width(), 24), label)

    @staticmethod
    def _label(painter: QPainter, box: QRectF, text: str) -> None:
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box.adjusted(6, 2, -6, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, text)

    def _set_wipe(self, x: float) -> None:
        if self._original is not None and self.mode == self.WIPE:
            target = self._fit(self._original, QRectF(self.rect()))
            self.wipe = float(min(max((x - target.left()) / target.width(), 0.0), 1.0))
            self.update()

    def mousePressEvent(self, event) -> None:
        self._set_wipe(event.position().x())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._set_wipe(event.position().x())
