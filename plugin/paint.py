"""The mask brush: paint or erase the final mask on the current frame. A painted frame keeps the
painted mask as drawn (the overrides no longer move it there) until its paint is cleared."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QRadioButton, QSlider, QVBoxLayout, QWidget

from .document import ShotDocument
from .viewer import Viewer


class PaintPanel(QWidget):
    def __init__(self, document: ShotDocument, viewer: Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.document, self.viewer = document, viewer
        self.brush = QPushButton("Brush")
        self.brush.setCheckable(True)
        self.brush.setToolTip("Paint on the viewer (B). Alt+drag or middle-drag pans while painting")
        self.brush.setShortcut("B")
        self.paint_mode, self.erase_mode = QRadioButton("Paint"), QRadioButton("Erase")
        self.paint_mode.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.paint_mode)
        group.addButton(self.erase_mode)
        self.size = QSlider(Qt.Orientation.Horizontal)
        self.size.setRange(1, 200)
        self.size.setValue(12)
        self.size_label = QLabel("12 px")
        self.clear = QPushButton("Clear paint on this frame")
        self.status = QLabel()
        self.status.setWordWrap(True)

        row = QHBoxLayout()
        row.addWidget(self.brush)
        row.addWidget(self.paint_mode)
        row.addWidget(self.erase_mode)
        row.addStretch(1)
        size = QHBoxLayout()
        size.addWidget(QLabel("Radius"))
        size.addWidget(self.size, 1)
        size.addWidget(self.size_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(size)
        layout.addWidget(self.clear)
        layout.addWidget(self.status)

        self.brush.toggled.connect(self._settings)
        self.erase_mode.toggled.connect(self._settings)
        self.size.valueChanged.connect(self._settings)
        self.clear.clicked.connect(lambda: document.clear_paint())
        viewer.strokeStarted.connect(self._start)
        viewer.strokeMoved.connect(self._move)
        viewer.strokeEnded.connect(self._end)
        document.edited.connect(self.refresh)
        document.frameChanged.connect(self.refresh)
        self._last = None
        self._settings()

    def _settings(self, *_) -> None:
        self.viewer.brush = self.brush.isChecked()
        self.viewer.erase = self.erase_mode.isChecked()
        self.viewer.brush_radius = float(self.size.value())
        self.size_label.setText(f"{self.size.value()} px")
        self.viewer.setCursor(Qt.CursorShape.CrossCursor if self.brush.isChecked() else Qt.CursorShape.ArrowCursor)
        self.viewer.update()

    def _start(self, x: float, y: float) -> None:
        if not self.document.begin_stroke():
            self.status.setText("Nothing to paint here: no face on this frame, or the frame is bypassed.")
            return
        self._last = (x, y)
        self.document.stroke([(x, y)], self.size.value(), self.erase_mode.isChecked())

    def _move(self, x: float, y: float) -> None:
        if self._last is not None:
            self.document.stroke([self._last, (x, y)], self.size.value(), self.erase_mode.isChecked())
            self._last = (x, y)

    def _end(self) -> None:
        if self._last is not None:
            self._last = None
            self.document.end_stroke(self.erase_mode.isChecked())

    def refresh(self, *_) -> None:
        if not self.document.is_open:
            return
        painted = sorted(self.document.painted)
        self.clear.setEnabled(self.document.frame in self.document.painted)
        self.status.setText(
            f"Painted frames: {', '.join(map(str, painted))}. Overrides do not move a painted mask." if painted
            else "No painted frames. The brush starts from the final mask of the frame.")
