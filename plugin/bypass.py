"""Bypass ranges: frames the render leaves untouched (a hand in front of the mouth, a cut)."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSpinBox, QWidget

from .document import ShotDocument


class BypassPanel(QWidget):
    def __init__(self, document: ShotDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin in (self.first, self.last):
            spin.setRange(-10**7, 10**7)
        set_first, set_last = QPushButton("In = current"), QPushButton("Out = current")
        self.add = QPushButton("Bypass range")
        self.toggle = QPushButton("Bypass this frame")
        self.ranges = QListWidget()
        self.ranges.setMaximumHeight(80)
        self.remove = QPushButton("Remove selected")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("From"), 0, 0)
        grid.addWidget(self.first, 0, 1)
        grid.addWidget(set_first, 0, 2)
        grid.addWidget(QLabel("to"), 1, 0)
        grid.addWidget(self.last, 1, 1)
        grid.addWidget(set_last, 1, 2)
        grid.addWidget(self.add, 2, 1)
        grid.addWidget(self.toggle, 2, 2)
        grid.addWidget(self.ranges, 3, 0, 1, 3)
        grid.addWidget(self.remove, 4, 2)
        set_first.clicked.connect(lambda: self.first.setValue(document.frame))
        set_last.clicked.connect(lambda: self.last.setValue(document.frame))
        self.add.clicked.connect(lambda: document.add_bypass(self.first.value(), self.last.value()))
        self.toggle.clicked.connect(self._toggle)
        self.remove.clicked.connect(self._remove)
        document.edited.connect(self.refresh)
        document.frameChanged.connect(self.refresh)
        document.opened.connect(self._opened)

    def _opened(self) -> None:
        first, last = self.document.range
        for spin in (self.first, self.last):
            spin.setRange(first, last)
        self.first.setValue(first)
        self.last.setValue(first)
        self.refresh()

    def _toggle(self) -> None:
        frame = self.document.frame
        if self.document.shot.bypassed(frame):
            self.document.remove_bypass(frame, frame)
        else:
            self.document.add_bypass(frame, frame)

    def _remove(self) -> None:
        item = self.ranges.currentItem()
        if item is not None:
            self.document.remove_bypass(*item.data(256))

    def refresh(self, *_) -> None:
        if not self.document.is_open:
            return
        self.ranges.clear()
        for first, last in self.document.shot.bypass:
            item = QListWidgetItem(f"{first}-{last}" if last != first else str(first))
            item.setData(256, (first, last))
            self.ranges.addItem(item)
        self.toggle.setText("Un-bypass this frame" if self.document.shot.bypassed(self.document.frame) else "Bypass this frame")
