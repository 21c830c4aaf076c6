"""The shot's keyed controls, mask or motion: one row per control (slider, value, key button, interpolation),
keyed at the current frame. A keyed control shows a filled key where the current frame has a key."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QSlider, QToolButton, QWidget,
)

from .document import CONTROLS, LIMITS, ShotDocument

# Slider range (the spin box takes the whole allowed range), step, unit and tooltip per control.
SPECS = {
    "grow": ((-60, 60), 0.5, " px", "Grow (+) or shrink (-) the mask, in plate pixels"),
    "feather": ((0, 100), 0.5, " px", "Soft edge width in plate pixels; Auto: about 6% of the face height"),
    "offset_y": ((-60, 60), 0.5, " px", "Move the mask down (+) or up (-), in plate pixels"),
    "jaw_extension": ((0, 1.5), 0.01, "", "How far the chin outline drops, in nose-to-chin distances"),
    "mouth_margin": ((-0.2, 0.5), 0.01, "", "Sideways widening below the nose, in face widths"),
    "gain": ((0, 3), 0.01, "", "Articulation: how far the mouth moves from rest (1: the actor's own; 0 holds it at rest)"),
    "open": ((-1, 2), 0.01, "", "Open the mouth wider (+, in the actor's opening range) or close it (-1: closed)"),
    "wide": ((-1, 1), 0.01, "", "Widen (+) or narrow (-) the mouth, in the actor's width range"),
}
LABELS = {"grow": "Grow", "feather": "Feather", "offset_y": "Offset Y", "jaw_extension": "Jaw extension", "mouth_margin": "Mouth margin",
          "gain": "Articulation", "open": "Open", "wide": "Wide"}
KEYED, UNKEYED, NO_KEY_HERE = "\u25c6", "\u25c7", "\u25c8"


class ControlRow:
    """The widgets of one control, placed on a grid row."""

    def __init__(self, control: str, grid: QGridLayout, row: int, panel: OverridesPanel):
        (low, high), step, unit, tip = SPECS[control]
        self.control, self.step, self.panel = control, step, panel
        self.label = QLabel(LABELS[control])
        self.label.setToolTip(tip)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(low / step), round(high / step))
        self.slider.setToolTip(tip)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(*LIMITS[control])
        self.spin.setDecimals(1 if step >= 0.5 else 2)
        self.spin.setSingleStep(step)
        self.spin.setSuffix(unit)
        self.spin.setKeyboardTracking(False)
        self.key = QToolButton()
        self.key.setObjectName(f"key_{control}")
        self.key.setToolTip("Key this control at the current frame (click again to remove the key)")
        self.interpolation = QComboBox()
        self.interpolation.addItems(["linear", "hold"])
        self.interpolation.setToolTip("How the value moves between keys")
        grid.addWidget(self.label, row, 0)
        grid.addWidget(self.slider, row, 1)
        grid.addWidget(self.spin, row, 2)
        grid.addWidget(self.key, row, 3)
        grid.addWidget(self.interpolation, row, 4)
        self.auto = None
        if control == "feather":
            self.auto = QCheckBox("Auto")
            self.auto.setToolTip(SPECS[control][3])
            grid.addWidget(self.auto, row, 5)
            self.auto.toggled.connect(self._auto_toggled)
        self.slider.valueChanged.connect(lambda v: self._changed(v * self.step))
        self.gesture = 0  # one slider drag is one undo step; the next drag is another
        self.slider.sliderReleased.connect(self._next_gesture)
        self.spin.editingFinished.connect(self._next_gesture)
        self.spin.valueChanged.connect(self._changed)
        self.key.clicked.connect(self._key_clicked)
        self.interpolation.currentTextChanged.connect(
            lambda text: panel.document.set_interpolation(control, text) if not panel.updating else None)

    def _changed(self, value: float) -> None:
        if not self.panel.updating:
            self.panel.document.set_value(self.control, value, gesture=self.gesture)

    def _next_gesture(self) -> None:
        self.gesture += 1

    def _auto_toggled(self, auto: bool) -> None:
        if self.panel.updating:
            return
        document = self.panel.document
        document.set_value("feather", None if auto else document._numeric("feather", document.frame))

    def _key_clicked(self) -> None:
        document = self.panel.document
        if document.frame in document.keys(self.control):
            document.remove_key(self.control)
        else:
            document.set_key(self.control)

    def refresh(self, document: ShotDocument) -> None:
        value = document.value(self.control)
        keys = document.keys(self.control)
        automatic = value is None
        shown = document._numeric(self.control, document.frame) if automatic else value
        self.slider.setValue(round(shown / self.step))
        self.spin.setValue(shown)
        for widget in (self.slider, self.spin):
            widget.setEnabled(not automatic)
        if self.auto is not None:
            self.auto.setChecked(automatic)
        self.key.setEnabled(not automatic)
        here = document.frame in keys
        self.key.setText(KEYED if here else (NO_KEY_HERE if keys else UNKEYED))
        self.key.setToolTip(
            f"Keyed at {', '.join(map(str, keys))}. Click to {'remove the key at' if here else 'add a key at'} frame {document.frame}"
            if keys else "Not keyed: the value holds for the whole shot. Click to key it at the current frame")
        self.label.setStyleSheet("color: #ffd200;" if keys else "")
        self.interpolation.setEnabled(bool(keys))
        self.interpolation.setCurrentText(document.interpolation(self.control) or "linear")


class OverridesPanel(QWidget):
    """Rows for `controls` (the mask's: grow, feather, offset Y, jaw extension, mouth margin; or the motion's:
    articulation, open, wide), plus key navigation."""

    def __init__(self, document: ShotDocument, parent: QWidget | None = None, controls: tuple[str, ...] = CONTROLS):
        super().__init__(parent)
        self.document = document
        self.controls = controls
        self.updating = False
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.rows = {control: ControlRow(control, grid, i, self) for i, control in enumerate(controls)}
        grid.setColumnStretch(1, 1)
        previous, following = QToolButton(), QToolButton()
        previous.setText("\u25c0 key")
        following.setText("key \u25b6")
        previous.setToolTip("Go to the previous key of any control")
        following.setToolTip("Go to the next key of any control")
        previous.clicked.connect(lambda: self._jump(-1))
        following.clicked.connect(lambda: self._jump(+1))
        grid.addWidget(previous, len(controls), 1, alignment=Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(following, len(controls), 1, 1, 4, alignment=Qt.AlignmentFlag.AlignRight)
        document.edited.connect(self.refresh)
        document.frameChanged.connect(self.refresh)
        document.opened.connect(self.refresh)

    def _jump(self, direction: int) -> None:
        keys = sorted(self.document.key_frames(self.controls))
        frame = self.document.frame
        candidates = [k for k in keys if (k - frame) * direction > 0]
        if candidates:
            self.document.set_frame(candidates[0] if direction > 0 else candidates[-1])

    def refresh(self, *_) -> None:
        if not self.document.is_open:
            return
        self.updating = True
        try:
            for row in self.rows.values():
                row.refresh(self.document)
        finally:
            self.updating = False
