"""The Render tab: `lipsync dub` on the open shot in a subprocess, with a progress bar, frames per
second, ETA and Cancel. The UI keeps running while it renders; a cancelled render leaves nothing
under the output's name."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPlainTextEdit,
    QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from lipsync_core.errors import LipSyncError, MediaError
from lipsync_core.media.frames import sequence_files

from .document import ShotDocument
from .jobs import JobPanel, command_available, format_seconds

STAGE_NAMES = {"analyze": "Analyzing faces", "render": "Rendering"}


def default_output(document: ShotDocument) -> Path:
    """renders/<plate>_dub.mp4 beside the sidecar (.mov for odd sizes H.264 cannot take; a sequence
    plate renders to a sequence of its own kind)."""
    shot, info = document.shot, document.info
    name = Path(shot.source).name
    folder = shot.folder / "renders"
    if info.kind == "sequence":
        stem = name.split("#")[0].split("%")[0].rstrip("._-") or "plate"
        suffix = ".exr" if info.codec == "exr" else ".png"
        return folder / f"{stem}_dub.####{suffix}"
    stem = Path(name).stem
    return folder / (f"{stem}_dub.mp4" if info.width % 2 == 0 and info.height % 2 == 0 else f"{stem}_dub.mov")


class RenderPanel(JobPanel):
    rendered = Signal(str, int, int)  # output, first and last plate frame rendered
    error = Signal(str)

    def __init__(self, document: ShotDocument, parent: QWidget | None = None):
        super().__init__("Render", parent)
        self.document = document
        self.output = QLineEdit()
        self.output.setPlaceholderText("renders/<plate>_dub.mp4")
        browse_output = QPushButton("\u2026")
        self.model = QLineEdit()
        self.model.setPlaceholderText("none: the actor's own mouth, moved and rendered (or a generator/actor model)")
        self.model.setToolTip("Empty: the mouth is moved from the shot's own frames by the motion stage and rendered over "
                              "by the bundled StyleLipSync renderer. Another renderer renders instead; a StyleLipSync "
                              "generator or an actor model from Personalize draws the mouth with the generator.")
        browse_model = QPushButton("\u2026")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.whole = QCheckBox("Whole shot")
        self.whole.setChecked(True)
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin in (self.first, self.last):
            spin.setRange(-10**7, 10**7)
            spin.setEnabled(False)
        self.progress.setFormat("%v / %m")
        self.status.setText("Ready")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)

        grid = QGridLayout()
        grid.addWidget(QLabel("Output"), 0, 0)
        grid.addWidget(self.output, 0, 1)
        grid.addWidget(browse_output, 0, 2)
        grid.addWidget(QLabel("Model"), 1, 0)
        grid.addWidget(self.model, 1, 1)
        grid.addWidget(browse_model, 1, 2)
        grid.addWidget(QLabel("Device"), 2, 0)
        grid.addWidget(self.device, 2, 1)
        frames = QHBoxLayout()
        frames.addWidget(self.whole)
        frames.addWidget(self.first)
        frames.addWidget(QLabel("to"))
        frames.addWidget(self.last)
        grid.addWidget(QLabel("Frames"), 3, 0)
        grid.addLayout(frames, 3, 1, 1, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.log, 1)

        browse_output.clicked.connect(self._browse_output)
        browse_model.clicked.connect(self._browse_model)
        self.whole.toggled.connect(lambda whole: [s.setEnabled(not whole) for s in (self.first, self.last)])
        self.start.clicked.connect(self.render)
        self.job.progress.connect(self._progress)
        self.job.output.connect(self.log.appendPlainText)
        self.job.finished.connect(self._finished)
        document.opened.connect(self._opened)
        self._range = (0, 0)

    def _opened(self) -> None:
        first, last = self.document.range
        for spin in (self.first, self.last):
            spin.setRange(first, last)
        self.first.setValue(first)
        self.last.setValue(last)
        self.output.setText(str(default_output(self.document)))

    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Render to", self.output.text(),
                                              "Video (*.mp4 *.mov);;Image sequence (*.exr *.png)")
        if path:
            self.output.setText(path)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", self.model.text(), "Model (*.safetensors)")
        if path:
            self.model.setText(path)

    def render(self) -> bool:
        """Save the shot and start the render; False (with the reason shown) when it cannot start."""
        document = self.document
        try:
            if not document.is_open:
                raise LipSyncError("open a plate first")
            if document.shot.audio_path is None:
                raise LipSyncError("choose the dub audio first (File > Open dub audio)")
            if not command_available("dub", "--progress-json"):
                raise LipSyncError("this build's `lipsync` has no `dub --progress-json` command: rendering is not available")
            sidecar = document.save()
            output = Path(self.output.text().strip() or default_output(document))
            if not output.is_absolute():
                output = document.shot.folder / output
            output.parent.mkdir(parents=True, exist_ok=True)
        except (LipSyncError, OSError) as error:
            self._fail(str(error))
            return False
        # `lipsync dub` keeps an existing result unless told to replace it: the artist says so here.
        replace = _rendered_before(output)
        if replace and QMessageBox.question(self, "LipSync", f"{output} exists. Render over it?") != QMessageBox.StandardButton.Yes:
            return False
        first, last = document.range if self.whole.isChecked() else (self.first.value(), self.last.value())
        arguments = ["dub", str(document.shot.plate), str(document.shot.audio_path), "-o", str(output),
                     "--shot", str(sidecar), "--device", self.device.currentText(), "--progress-json"]
        if self.model.text().strip():
            arguments += ["--model", self.model.text().strip()]
        if not self.whole.isChecked():
            arguments += ["--frames", f"{first}-{last}"]
        if replace:
            arguments.append("--overwrite")
        self._range = (first, last)
        self._output = output
        self.log.clear()
        self.log.appendPlainText("lipsync " + " ".join(arguments))
        self.begin(arguments)
        return True

    def _progress(self, report: dict) -> None:
        stage, done, total, fps, eta = self.advance(report)
        text = f"{STAGE_NAMES.get(stage, stage.capitalize())}: {done} of {total} frames"
        if fps is not None:
            text += f" \u00b7 {fps:.1f} fps \u00b7 ETA {format_seconds(eta)}"
        self.status.setText(text)

    def _finished(self, ok: bool, message: str) -> None:
        elapsed = self.ended(ok)
        if ok:
            self.status.setText(f"Done in {elapsed}: {self._output}")
            self.rendered.emit(str(self._output), *self._range)
        elif message == "cancelled":
            self.status.setText("Cancelled: nothing was written under the output's name")
            self.log.appendPlainText("cancelled")
        else:
            self._fail(message)

    def _fail(self, message: str) -> None:
        self.status.setText(f"Render failed: {message}")
        self.log.appendPlainText(f"error: {message}")
        self.error.emit(message)


def _rendered_before(output: Path) -> bool:
    """Whether `output` (a video, or any frame of a sequence) is there already."""
    if output.exists():
        return True
    try:
        return bool(sequence_files(output))
    except MediaError:
        return False  # no frame of it, or no such file
