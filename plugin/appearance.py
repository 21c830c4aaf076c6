"""Appearance footage: more clips of the shot's actor (another take, an interview reel) whose mouths the render may
take where the shot never opens as wide or shows no teeth. Kept in the shot sidecar's `appearance` list, so `lipsync
dub`, `lipsync batch`, the farm and the host nodes use the same clips."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QGridLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QWidget

from lipsync_core.errors import LipSyncError

from .document import ShotDocument

CLIP_FILTER = "Footage (*.mp4 *.mov *.mkv *.avi *.mpg *.mxf *.webm *.exr *.png *.tif *.tiff);;All files (*)"


class AppearancePanel(QWidget):
    error = Signal(str)

    def __init__(self, document: ShotDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.clips = QListWidget()
        self.clips.setMaximumHeight(90)
        self.add = QPushButton("Add clip\u2026")
        self.remove = QPushButton("Remove selected")
        note = QLabel("Each clip must show this shot's actor: the render refuses anyone else's.")
        note.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.clips, 0, 0, 1, 2)
        grid.addWidget(self.add, 1, 0)
        grid.addWidget(self.remove, 1, 1)
        grid.addWidget(note, 2, 0, 1, 2)
        self.add.clicked.connect(self._add)
        self.remove.clicked.connect(self._remove)
        document.edited.connect(self.refresh)
        document.opened.connect(self.refresh)

    def _add(self) -> None:
        if not self.document.is_open:
            self.error.emit("open a plate first")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Footage of the actor", str(self.document.shot.folder), CLIP_FILTER)
        if not path:
            return
        try:
            self.document.add_appearance(path)
        except LipSyncError as error:
            self.error.emit(str(error))

    def _remove(self) -> None:
        item = self.clips.currentItem()
        if item is not None:
            self.document.remove_appearance(item.data(Qt.ItemDataRole.UserRole))

    def refresh(self, *_) -> None:
        if not self.document.is_open:
            return
        self.clips.clear()
        for name in self.document.shot.appearance:
            item = QListWidgetItem(Path(name).name)
            item.setToolTip(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.clips.addItem(item)
