"""The frame viewer: the plate frame with the overlays (landmarks, automatic mask, final mask, face
ids), zoom and pan, a click choosing the face to dub, and the mask brush."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# Overlay colours: the automatic mask as a cyan outline, the final mask as an orange tint + outline.
AUTO_COLOUR = QColor(0, 220, 255)
FINAL_COLOUR = QColor(255, 120, 0)
LANDMARK_COLOUR = QColor(120, 255, 120)
CHOSEN_COLOUR = QColor(255, 220, 0)
OTHER_FACE_COLOUR = QColor(200, 200, 200)


def to_qimage(image: np.ndarray) -> QImage:
    """A QImage owning a copy of an HxWx3 uint8 RGB array."""
    image = np.ascontiguousarray(image[..., :3])
    height, width = image.shape[:2]
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def mask_tint(mask: np.ndarray, colour: QColor, opacity: float = 0.45) -> QImage:
    """A premultiplied ARGB image of `colour` with the mask as its alpha."""
    alpha = np.clip(mask, 0, 1) * opacity
    argb = np.empty(mask.shape + (4,), np.uint8)  # BGRA in memory (little endian ARGB32)
    argb[..., 0] = np.round(alpha * colour.blue())
    argb[..., 1] = np.round(alpha * colour.green())
    argb[..., 2] = np.round(alpha * colour.red())
    argb[..., 3] = np.round(alpha * 255)
    height, width = mask.shape
    return QImage(argb.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied).copy()


def mask_outline(mask: np.ndarray, level: float = 0.5) -> QPainterPath:
    """The mask's outline at `level` (0.5 lies on the un-feathered edge) as a painter path."""
    contours, _ = cv2.findContours((mask >= level).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for contour in contours:
        points = contour[:, 0].astype(float) + 0.5
        path.moveTo(*points[0])
        for x, y in points[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
    return path


def _cosmetic(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    """A pen `width` screen pixels wide whatever the zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


class Viewer(QWidget):
    """Shows one frame. Plate coordinates map to the widget by `zoom` and `pan` (None zoom: fit)."""

    faceClicked = Signal(float, float)  # plate x, y (not in brush mode)
    strokeStarted = Signal(float, float)
    strokeMoved = Signal(float, float)
    strokeEnded = Signal()
    zoomChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image: QImage | None = None
        self._auto: QPainterPath | None = None
        self._final_tint: QImage | None = None
        self._final_outline: QPainterPath | None = None
        self.final: np.ndarray | None = None
        self._faces: list[tuple[int, np.ndarray]] = []
        self._chosen = 0
        self.message = ""  # drawn in the corner: "no face on this frame", "bypassed", ...
        self.show_landmarks = True
        self.show_auto = True
        self.show_final = True
        self.show_ids = True
        self.brush = False
        self.brush_radius = 12.0
        self.erase = False
        self._zoom: float | None = None
        self._pan = QPointF(0, 0)
        self._drag: tuple[QPointF, QPointF] | None = None
        self._painting = False
        self._cursor: QPointF | None = None

    # ---------------------------------------------------------------------------- content

    def set_frame(self, image: np.ndarray, faces: list[tuple[int, np.ndarray]], chosen: int,
                  auto: np.ndarray | None, final: np.ndarray | None, message: str = "") -> None:
        first = self._image is None
        self._image = to_qimage(image)
        if first:
            self.zoomChanged.emit(self.zoom)
        self._faces, self._chosen, self.message = faces, chosen, message
        self._auto = mask_outline(auto) if auto is not None else None
        self.set_final(final)

    def set_final(self, final: np.ndarray | None) -> None:
        self.final = final  # the mask shown, for whoever needs its values
        self._final_tint = mask_tint(final, FINAL_COLOUR) if final is not None else None
        self._final_outline = mask_outline(final) if final is not None else None
        self.update()

    def clear(self) -> None:
        self._image = None
        self._faces = []
        self._auto = self._final_tint = self._final_outline = None
        self.update()

    # ---------------------------------------------------------------------------- zoom, mapping

    @property
    def zoom(self) -> float:
        if self._zoom is not None or self._image is None:
            return self._zoom or 1.0
        return min(self.width() / self._image.width(), self.height() / self._image.height())

    def set_zoom(self, zoom: float | None, anchor: QPointF | None = None) -> None:
        """None fits the frame in the widget; `anchor` (widget point) stays over the same plate point."""
        if zoom is None:
            self._zoom, self._pan = None, QPointF(0, 0)
        else:
            zoom = float(min(max(zoom, 0.05), 32.0))
            anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
            plate = self.to_plate(anchor)
            self._zoom = zoom
            self._pan = QPointF(0, 0)
            moved = self.to_widget(plate)
            self._pan = anchor - moved
        self.zoomChanged.emit(self.zoom)
        self.update()

    def _origin(self) -> QPointF:
        if self._image is None:
            return QPointF(0, 0)
        z = self.zoom
        return QPointF((self.width() - self._image.width() * z) / 2, (self.height() - self._image.height() * z) / 2) + self._pan

    def to_plate(self, point: QPointF) -> QPointF:
        return (point - self._origin()) / self.zoom

    def to_widget(self, point: QPointF) -> QPointF:
        return point * self.zoom + self._origin()

    # ---------------------------------------------------------------------------- painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 32))
        if self._image is None:
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a plate (File > Open plate) or a shot sidecar")
            return
        origin, z = self._origin(), self.zoom
        painter.save()
        painter.translate(origin)
        painter.scale(z, z)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, z < 2)
        painter.drawImage(0, 0, self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.show_final and self._final_tint is not None:
            painter.drawImage(0, 0, self._final_tint)
            painter.setPen(_cosmetic(FINAL_COLOUR, 1.5))
            painter.drawPath(self._final_outline)
        if self.show_auto and self._auto is not None:
            painter.setPen(_cosmetic(AUTO_COLOUR, 1.5, Qt.PenStyle.DashLine))
            painter.drawPath(self._auto)
        if self.show_landmarks:
            for face_id, points in self._faces:
                colour = LANDMARK_COLOUR if face_id == self._chosen else OTHER_FACE_COLOUR
                painter.setPen(_cosmetic(colour, 2.0))
                painter.drawPoints([QPointF(float(x), float(y)) for x, y in points[:, :2]])
        painter.restore()
        if self.show_ids:
            self._draw_ids(painter)
        if self.brush and self._cursor is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(255, 80, 80) if self.erase else QColor(255, 255, 255), 1.2))
            r = self.brush_radius * z
            painter.drawEllipse(self._cursor, r, r)
        if self.message:
            painter.setPen(QColor(255, 200, 120))
            painter.drawText(self.rect().adjusted(10, 8, -10, -8), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, self.message)

    def _draw_ids(self, painter: QPainter) -> None:
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        for face_id, points in self._faces:
            top = self.to_widget(QPointF(float(points[:, 0].mean()), float(points[:, 1].min())))
            chosen = face_id == self._chosen
            text = f"face {face_id}" + (" (dubbed)" if chosen else "")
            box = QRectF(top.x() - 60, top.y() - 24, 120, 20)
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(CHOSEN_COLOUR if chosen else OTHER_FACE_COLOUR)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # ---------------------------------------------------------------------------- mouse

    def resizeEvent(self, event) -> None:
        if self._zoom is None:
            self.zoomChanged.emit(self.zoom)

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        self.set_zoom(self.zoom * (1.25 ** steps), event.position())

    def mousePressEvent(self, event) -> None:
        if self._image is None:
            return
        position = event.position()
        panning = event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if panning:
            if self._zoom is None:
                self._zoom = self.zoom
            self._drag = (position, QPointF(self._pan))
        elif event.button() == Qt.MouseButton.LeftButton:
            plate = self.to_plate(position)
            if self.brush:
                self._painting = True
                self.strokeStarted.emit(plate.x(), plate.y())
            else:
                self.faceClicked.emit(plate.x(), plate.y())

    def mouseMoveEvent(self, event) -> None:
        position = event.position()
        self._cursor = position
        if self._drag is not None:
            start, pan = self._drag
            self._pan = pan + (position - start)
            self.update()
        elif self._painting:
            plate = self.to_plate(position)
            self.strokeMoved.emit(plate.x(), plate.y())
        elif self.brush:
            self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None:
            self._drag = None
        elif self._painting:
            self._painting = False
            self.strokeEnded.emit()

    def leaveEvent(self, event) -> None:
        self._cursor = None
        self.update()
