"""A small live line plot (loss and sync over training steps) for the Personalize tab."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

COLOURS = [QColor(255, 140, 60), QColor(90, 170, 255), QColor(120, 220, 120), QColor(230, 90, 230)]


class LinePlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.series: dict[str, list[tuple[float, float]]] = {}

    def clear(self) -> None:
        self.series = {}
        self.update()

    def add(self, name: str, x: float, y: float) -> None:
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        area = QRectF(self.rect()).adjusted(8, 20, -8, -8)
        if not any(self.series.values()):
            painter.setPen(QColor(140, 140, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss and sync appear here while training")
            return
        xs = [x for points in self.series.values() for x, _ in points]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        legend = 8
        for i, (name, points) in enumerate(self.series.items()):
            colour = COLOURS[i % len(COLOURS)]
            ys = [y for _, y in points]
            y0, y1 = min(ys), max(max(ys), min(ys) + 1e-9)
            path = QPainterPath()
            for k, (x, y) in enumerate(points):  # each series on its own vertical scale
                p = QPointF(area.left() + (x - x0) / (x1 - x0) * area.width(), area.bottom() - (y - y0) / (y1 - y0) * area.height())
                path.moveTo(p) if k == 0 else path.lineTo(p)
            painter.setPen(QPen(colour, 1.5))
            painter.drawPath(path)
            text = f"{name} {ys[-1]:.4g}"
            painter.drawText(QPointF(legend, 14), text)
            legend += painter.fontMetrics().horizontalAdvance(text) + 16
