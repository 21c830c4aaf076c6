"""The panel's main window: the viewer (or the before/after compare) with its transport, timeline and
waveform; the Mask, Render and Personalize tabs beside it; menus, status and error messages."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar,
    QPushButton, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget,
)

from lipsync_core.errors import LipSyncError
from lipsync_core.media.audio import SAMPLE_RATE
from lipsync_core.provenance.verify import claims

from .analysis import Analysis
from .appearance import AppearancePanel
from .bypass import BypassPanel
from .compare import CompareView, DubbedSource
from .document import MOTION_CONTROLS, ShotDocument
from .overrides import OverridesPanel
from .paint import PaintPanel
from .personalize import PersonalizePanel
from .render import RenderPanel
from .timeline import Timeline
from .transport import Transport
from .viewer import Viewer
from .motion_curve import MotionCurve
from .waveform import Waveform

PLATE_FILTER = "Plates (*.mp4 *.mov *.mkv *.avi *.mpg *.mxf *.webm *.exr *.png *.tif *.tiff *.jpg *.jpeg);;All files (*)"
AUDIO_FILTER = "Audio (*.wav *.flac *.mp3 *.aac *.m4a *.ogg *.mp4 *.mov);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("LipSync")
        self.resize(1400, 860)
        self.document = document = ShotDocument(self)
        self.analysis = Analysis(self)
        self.dubbed: DubbedSource | None = None
        self._claims = ""  # what the opened file says it is (provenance), shown beside its format
        self.confirm_close = True
        self.errors: list[str] = []  # every message shown, newest last

        # centre: viewer | compare, transport, timeline, waveform
        self.viewer = Viewer()
        self.compare = CompareView()
        self.views = QTabWidget()
        self.views.addTab(self.viewer, "Viewer")
        compare_page = QWidget()
        self.compare_mode = QComboBox()
        self.compare_mode.addItems([CompareView.SIDE, CompareView.WIPE])
        compare_bar = QHBoxLayout()
        compare_bar.addWidget(QLabel("Compare"))
        compare_bar.addWidget(self.compare_mode)
        compare_bar.addStretch(1)
        compare_layout = QVBoxLayout(compare_page)
        compare_layout.setContentsMargins(0, 0, 0, 0)
        compare_layout.addLayout(compare_bar)
        compare_layout.addWidget(self.compare, 1)
        self.views.addTab(compare_page, "Compare")
        self.overlays = {}
        overlay_bar = QHBoxLayout()
        for name, label in (("landmarks", "Landmarks"), ("auto", "Automatic mask"), ("final", "Final mask"), ("ids", "Face ids")):
            box = QCheckBox(label)
            box.setChecked(True)
            box.toggled.connect(self._overlays)
            overlay_bar.addWidget(box)
            self.overlays[name] = box
        overlay_bar.addStretch(1)
        self.info = QLabel("No shot open")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.face = QComboBox()
        self.face.setToolTip("The face to dub (or click a face in the viewer)")
        self.face.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        info_bar = QHBoxLayout()
        info_bar.addWidget(self.info, 1)
        info_bar.addWidget(QLabel("Dub face"))
        info_bar.addWidget(self.face)
        self.transport = Transport(document, self.viewer)
        self.timeline = Timeline()
        self.waveform = Waveform()
        self.motion_curve = MotionCurve(document)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(6, 6, 6, 6)
        centre_layout.addLayout(info_bar)
        centre_layout.addLayout(overlay_bar)
        centre_layout.addWidget(self.views, 1)
        centre_layout.addWidget(self.transport)
        centre_layout.addWidget(self.timeline)
        centre_layout.addWidget(self.waveform)
        centre_layout.addWidget(self.motion_curve)

        # side: mask, render, personalize
        self.overrides = OverridesPanel(document)
        self.paint = PaintPanel(document, self.viewer)
        self.bypass = BypassPanel(document)
        mask_page = QWidget()
        mask_layout = QVBoxLayout(mask_page)
        for title, panel in (("Mask overrides (keyed at the current frame)", self.overrides),
                             ("Paint the mask", self.paint), ("Bypass (frames left untouched)", self.bypass)):
            group = QGroupBox(title)
            QVBoxLayout(group).addWidget(panel)
            mask_layout.addWidget(group)
        mask_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(mask_page)
        self.motion = OverridesPanel(document, controls=MOTION_CONTROLS)
        motion_page = QWidget()
        motion_layout = QVBoxLayout(motion_page)
        motion_group = QGroupBox("Mouth motion (keyed at the current frame; the curve under the waveform follows)")
        QVBoxLayout(motion_group).addWidget(self.motion)
        motion_layout.addWidget(motion_group)
        self.appearance = AppearancePanel(document)
        appearance_group = QGroupBox("Appearance footage (more clips of the actor to take mouths from)")
        QVBoxLayout(appearance_group).addWidget(self.appearance)
        motion_layout.addWidget(appearance_group)
        motion_layout.addStretch(1)
        self.render_panel = RenderPanel(document)
        self.personalize = PersonalizePanel()
        self.side = QTabWidget()
        self.side.addTab(scroll, "Mask")
        self.side.addTab(motion_page, "Motion")
        self.side.addTab(self.render_panel, "Render")
        self.side.addTab(self.personalize, "Personalize")
        self.side.setMinimumWidth(430)

        splitter = QSplitter()
        splitter.addWidget(centre)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([960, 440])
        self.setCentralWidget(splitter)

        # status bar: analysis progress and cancel
        self.analysis_bar = QProgressBar()
        self.analysis_bar.setMaximumWidth(240)
        self.analysis_bar.setFormat("analyzing faces %v/%m")
        self.analysis_cancel = QPushButton("Cancel analysis")
        for widget in (self.analysis_bar, self.analysis_cancel):
            widget.hide()
            self.statusBar().addPermanentWidget(widget)
        self._menus()

        document.opened.connect(self._opened)
        document.frameChanged.connect(self._frame)
        document.edited.connect(self._edited)
        document.trackChanged.connect(self._track)
        document.analysisNeeded.connect(self.analyze)
        document.saved.connect(lambda path: self.statusBar().showMessage(f"Saved {path}", 5000))
        document.undo.cleanChanged.connect(self._clean_changed)
        self.viewer.faceClicked.connect(self._face_clicked)
        self.face.activated.connect(lambda i: document.choose_face(self.face.itemData(i)))
        self.timeline.frameRequested.connect(document.set_frame)
        self.waveform.frameRequested.connect(document.set_frame)
        self.motion_curve.frameRequested.connect(document.set_frame)
        self.views.currentChanged.connect(lambda _: self._frame(document.frame))
        self.compare_mode.currentTextChanged.connect(self.compare.set_mode)
        self.analysis.progress.connect(self._analysis_progress)
        self.analysis.finished.connect(self._analysis_done)
        self.analysis.failed.connect(lambda message: (self._analysis_ended(), self.show_error(message)))
        self.analysis.cancelled.connect(lambda: (self._analysis_ended(), self.statusBar().showMessage("Face analysis cancelled", 5000)))
        self.analysis_cancel.clicked.connect(self.analysis.cancel)
        self.render_panel.rendered.connect(self._rendered)
        self.render_panel.error.connect(self.show_error)
        self.personalize.error.connect(self.show_error)
        self.appearance.error.connect(self.show_error)
        self.personalize.useModel.connect(self._use_model)

    # ------------------------------------------------------------------------------ menus

    def _menus(self) -> None:
        def action(menu, text, slot, shortcut=None):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        file = self.menuBar().addMenu("&File")
        action(file, "Open plate\u2026", self._open_plate_dialog, QKeySequence.StandardKey.Open)
        action(file, "Open shot sidecar\u2026", self._open_sidecar_dialog)
        action(file, "Open dub audio\u2026", self._open_audio_dialog)
        file.addSeparator()
        action(file, "Save shot", self.save, QKeySequence.StandardKey.Save)
        action(file, "Analyze faces again", lambda: self.analyze(force=True))
        file.addSeparator()
        action(file, "Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        undo = self.document.undo.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.document.undo.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        view = self.menuBar().addMenu("&View")
        for box in self.overlays.values():
            a = QAction(box.text(), self, checkable=True, checked=True)
            a.toggled.connect(box.setChecked)
            box.toggled.connect(a.setChecked)
            view.addAction(a)
        view.addSeparator()
        action(view, "Fit", lambda: self.viewer.set_zoom(None))
        action(view, "Actual pixels", lambda: self.viewer.set_zoom(1.0))

    def _open_plate_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open plate (a video, or any frame of a sequence)", "", PLATE_FILTER)
        if path:
            self.open(plate=path)

    def _open_sidecar_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open shot sidecar", "", "Shot sidecar (*.lipsync.json);;JSON (*.json)")
        if path:
            self.open(sidecar=path)

    def _open_audio_dialog(self) -> None:
        if not self.document.is_open:
            return self.show_error("open a plate first, then its dub audio")
        path, _ = QFileDialog.getOpenFileName(self, "Open dub audio", str(self.document.shot.folder), AUDIO_FILTER)
        if path:
            self.set_audio(path)

    # ------------------------------------------------------------------------------ actions

    def open(self, plate=None, audio=None, sidecar=None) -> bool:
        """Open a plate and/or sidecar (and dub audio); a readable message instead of a crash."""
        self.analysis.cancel()
        self.analysis.wait()
        try:
            self.document.open(plate, audio, sidecar)
        except LipSyncError as error:
            self.show_error(str(error))
            return False
        return True

    def set_audio(self, path) -> bool:
        try:
            self.document.set_audio(path)
        except (LipSyncError, OSError) as error:
            self.show_error(str(error))
            return False
        self._audio()
        return True

    def save(self) -> bool:
        if not self.document.is_open:
            return False
        try:
            self.document.save()
        except (LipSyncError, OSError) as error:
            self.show_error(f"the shot was not saved: {error}")
            return False
        return True

    def analyze(self, force: bool = False) -> None:
        document = self.document
        if not document.is_open:
            return
        if force:
            document.shot.track_path().unlink(missing_ok=True)
        sidecar = document.shot.path if document.shot.path.is_file() else None
        self.analysis_bar.setRange(0, 0)
        self.analysis_bar.show()
        self.analysis_cancel.show()
        self.analysis.start(document.shot.plate, sidecar)
        self._frame(document.frame)

    def show_error(self, message: str) -> None:
        """A readable message, without blocking the panel (no modal loop)."""
        self.errors.append(message)
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "LipSync", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ------------------------------------------------------------------------------ document -> widgets

    def _opened(self) -> None:
        document = self.document
        first, last = document.range
        self.timeline.set_range(first, last)
        self.waveform.set_range(first, last, document.fps)
        self.dubbed = None
        self.viewer.set_zoom(None)
        self._audio()
        # Read once on opening: what the file says it is (a dub delivered back, say), from its metadata only.
        self._claims = claims(document.shot.plate)
        self._describe()
        self._title()

    def _describe(self) -> None:
        document, info = self.document, self.document.info
        first, last = document.range
        faces = "analyzing\u2026" if document.track is None else str(len(document.track.faces))
        self.info.setText(
            f"<b>{Path(document.shot.source).name}</b> \u00b7 {info.width}\u00d7{info.height} \u00b7 {info.fps:g} fps \u00b7 "
            f"frames {first}\u2013{last} ({last - first + 1}) \u00b7 faces: {faces}"
            + (f" \u00b7 {self._claims}" if self._claims else ""))
        self.face.clear()
        if document.track is not None:
            for i, face in enumerate(document.track.faces):
                self.face.addItem(f"face {i} ({int(face.present.sum())} frames)", i)
            self.face.setCurrentIndex(document.shot.face)

    def _audio(self) -> None:
        document = self.document
        if document.audio is None:
            self.waveform.set_audio(None, SAMPLE_RATE, "no dub audio: File > Open dub audio")
        else:
            seconds = len(document.audio) / SAMPLE_RATE
            shot = (document.range[1] - document.range[0] + 1) / document.fps
            note = "" if abs(seconds - shot) < 0.5 / document.fps else (
                f" \u00b7 {abs(seconds - shot):.2f} s {'longer' if seconds > shot else 'shorter'} than the shot")
            self.waveform.set_audio(document.audio, SAMPLE_RATE, f"dub: {Path(document.shot.audio).name} ({seconds:.2f} s){note}")

    @Slot(bool)
    def _clean_changed(self, clean: bool) -> None:
        self._title(not clean)

    def _title(self, dirty: bool | None = None) -> None:
        name = Path(self.document.shot.path).name if self.document.is_open else ""
        dirty = self.document.dirty if dirty is None else dirty
        self.setWindowTitle(f"LipSync \u2014 {name}{' *' if dirty else ''}")

    def _track(self) -> None:
        self._describe()
        self._marks()
        self._frame(self.document.frame)

    def _edited(self) -> None:
        if self.document.track is not None and self.face.currentIndex() != self.document.shot.face:
            self.face.setCurrentIndex(self.document.shot.face)
        self._marks()
        self._frame(self.document.frame)
        self._title()

    def _marks(self) -> None:
        document = self.document
        no_face = []
        if document.track is not None and document.track.faces:
            face = document.track.face(document.shot.face)
            no_face = [int(n) for n, present in zip(document.track.frames, face.present) if not present]
        self.timeline.set_marks(document.key_frames(), document.painted, document.shot.bypass, no_face)

    def _frame(self, frame: int) -> None:
        """Show a frame: the viewer (or the compare view) and the playheads."""
        document = self.document
        if not document.is_open:
            return
        self.timeline.set_current(frame)
        self.waveform.set_current(frame)
        try:
            image = document.image(frame)
        except LipSyncError as error:
            self.viewer.clear()
            self.show_error(str(error))
            return
        if self.views.currentIndex() == 1:
            self._compare(frame, image)
            return
        message = ""
        if document.track is None:
            message = "Analyzing faces\u2026 the masks appear when it is done" if self.analysis.running else "No face track"
            self.viewer.set_frame(image, [], 0, None, None, message)
            return
        try:
            auto, final = document.auto_mask(frame), document.final_mask(frame)
        except LipSyncError as error:
            auto = final = None
            message = str(error)
        if document.shot.bypassed(frame):
            message = f"Frame {frame} is bypassed: it renders untouched"
        elif auto is None and not message:
            message = f"No face {document.shot.face} on frame {frame}: it passes through untouched"
        elif frame in document.painted:
            message = f"Frame {frame}: painted mask"
        self.viewer.set_frame(image, document.faces_on(frame), document.shot.face, auto, final, message)

    def _compare(self, frame: int, image) -> None:
        if self.dubbed is None:
            self.compare.set_images(image, None, "Render the shot (Render tab) to compare original and dubbed")
            return
        try:
            dubbed = self.dubbed.image(frame)
        except LipSyncError as error:
            self.compare.set_images(image, None, str(error))
            return
        note = "" if dubbed is not None else f"frame {frame} was not rendered ({self.dubbed.first}-{self.dubbed.last})"
        self.compare.set_images(image, dubbed, note)

    def _overlays(self) -> None:
        self.viewer.show_landmarks = self.overlays["landmarks"].isChecked()
        self.viewer.show_auto = self.overlays["auto"].isChecked()
        self.viewer.show_final = self.overlays["final"].isChecked()
        self.viewer.show_ids = self.overlays["ids"].isChecked()
        self.viewer.update()

    def _face_clicked(self, x: float, y: float) -> None:
        face_id = self.document.face_at(x, y)
        if face_id is not None:
            self.document.choose_face(face_id)

    # ------------------------------------------------------------------------------ background work

    def _analysis_progress(self, done: int, total: int) -> None:
        self.analysis_bar.setRange(0, total)
        self.analysis_bar.setValue(done)

    def _analysis_done(self, track) -> None:
        self._analysis_ended()
        if self.document.is_open and self.document.shot.track_mismatch(track, self.document.range) is None:
            self.document.set_track(track)
            present = [int(f.present.sum()) for f in track.faces]
            self.statusBar().showMessage(
                f"Faces found: {len(track.faces)}" + (f" (frames with the dubbed face: {present[self.document.shot.face]})" if present else
                                                      " \u2014 no face: every frame will pass through"), 8000)

    def _analysis_ended(self) -> None:
        self.analysis_bar.hide()
        self.analysis_cancel.hide()

    def _rendered(self, output: str, first: int, last: int) -> None:
        try:
            self.dubbed = DubbedSource(output, first, last)
        except LipSyncError as error:
            self.show_error(f"the render finished but cannot be read back: {error}")
            return
        self.views.setCurrentIndex(1)
        self.document.set_frame(first)
        self._frame(self.document.frame)

    def _use_model(self, path: str) -> None:
        self.render_panel.model.setText(path)
        self.side.setCurrentWidget(self.render_panel)

    def closeEvent(self, event) -> None:
        if self.confirm_close and self.document.is_open and self.document.dirty:
            answer = QMessageBox.question(
                self, "LipSync", "Save the changes to the shot before closing?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
            if answer == QMessageBox.StandardButton.Cancel or (answer == QMessageBox.StandardButton.Save and not self.save()):
                event.ignore()
                return
        self.transport.stop()
        self.analysis.cancel()
        self.analysis.wait()
        for job in (self.render_panel.job, self.personalize.job):
            if job.running:
                process = job.process
                job.cancel()
                process.waitForFinished(20000)
        event.accept()
