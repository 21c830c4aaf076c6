"""The dub's mouth opening under the waveform, frame-aligned with it: the motion the next render gives the mouth
(`lipsync_core.motion.stage.shot_motion`, the same as `lipsync motion`), redrawn after every edit of the shot's
motion controls (the Motion rows scale it and key corrections; their keys show as diamonds)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from lipsync_core.errors import LipSyncError
from lipsync_core.models.motion import MotionModel, load_motion_model
from lipsync_core.motion.stage import MotionCurves, shot_motion

from .document import MOTION_CONTROLS, ShotDocument
from .timeline import MARGIN, PLAYHEAD_COLOUR, FrameScale

CURVE_COLOUR = QColor(255, 150, 70)
KEY_COLOUR = QColor(255, 210, 0)
REDRAW_DELAY_MS = 150  # a slider drag recomputes once it pauses, not on every step


class MotionCurve(QWidget):
    frameRequested = Signal(int)

    def __init__(self, document: ShotDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setMinimumHeight(48)
        self.setMaximumHeight(64)
        self.curves: MotionCurves | None = None
        self.message = "mouth motion: open a shot with dub audio"
        self._model: MotionModel | None = None
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_DELAY_MS)
        self._timer.timeout.connect(self.recompute)
        for signal in (document.edited, document.trackChanged, document.opened):
            signal.connect(self._timer.start)
        document.frameChanged.connect(lambda _: self.update())

    def recompute(self) -> None:
        """The curves of the shot as it stands (none, with a message, while it cannot have any)."""
        document = self.document
        self.curves = None
        if not document.is_open or document.track is None:
            self.message = "mouth motion: after the face analysis"
        elif document.audio is None:
            self.message = "mouth motion: open the dub audio"
        else:
            try:
                self._model = self._model or load_motion_model()
                self.curves = shot_motion(document.shot.plate, document.shot.audio_path, shot=document.shot,
                                          track=document.track, dub_audio=document.audio, model=self._model)
                self.message = f"mouth opening; actor style {self.curves.style}"
            except LipSyncError as error:
                self.message = f"mouth motion: {error}"
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if not self.document.is_open:
            return
        first, last = self.document.range
        scale, height = FrameScale(first, last, self.width()), self.height()
        base = height - 6
        if self.curves is not None and len(self.curves):
            opening = self.curves.opening
            top = max(float(opening.max()), 1e-6)
            for frame, silent in zip(self.curves.frames, self.curves.silent):
                if silent:
                    painter.fillRect(QRectF(scale.x(frame) - scale.step / 2, 0, scale.step, height), QColor(255, 255, 255, 14))
            points = [QPointF(scale.x(f), base - max(o, 0.0) / top * (base - 14)) for f, o in zip(self.curves.frames, opening)]
            painter.setPen(QPen(QColor(90, 90, 100), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(MARGIN, base), QPointF(self.width() - MARGIN, base))  # the resting mouth
            painter.setPen(QPen(CURVE_COLOUR, 1.5))
            painter.drawPolyline(QPolygonF(points))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(KEY_COLOUR)
            for frame in sorted(self.document.key_frames(MOTION_CONTROLS)):
                x = scale.x(frame)
                painter.drawPolygon(QPolygonF([QPointF(x, base - 5), QPointF(x + 4, base - 1), QPointF(x, base + 3), QPointF(x - 4, base - 1)]))
        painter.setPen(QColor(140, 140, 150))
        painter.drawText(self.rect().adjusted(6, 2, -6, -2), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, self.message)
        x = scale.x(self.document.frame)
        painter.setPen(QPen(PLAYHEAD_COLOUR, 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, height))

    def mousePressEvent(self, event) -> None:
        if self.document.is_open:
            first, last = self.document.range
            self.frameRequested.emit(FrameScale(first, last, self.width()).frame(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.mousePressEvent(event)
