"""The Personalize tab: fine-tune the model on an actor's clips (`lipsync personalize`, in a
subprocess) with a progress bar, a live loss/sync plot and Cancel; then use the result for renders.

The command this tab runs:

    lipsync personalize CLIP [CLIP ...] -o actor.safetensors [--base BASE] [--steps N]
                        [--device auto|cpu|cuda] [--progress-json]

With --progress-json its progress lines are {"stage": "train", "done": step, "total": steps, "loss": ...,
"sync": ...} (stages: prepare, reader, train): they drive the bar and the plot. A command without that
option still runs, with a busy bar and its own output lines. A build without the command says so here
instead of offering a button that cannot work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton,
    QSpinBox, QVBoxLayout, QWidget,
)

from .jobs import JobPanel, command_available, format_seconds
from .plot import LinePlot

STAGE_NAMES = {"prepare": "Preparing the clips", "reader": "Learning the actor's mouth", "train": "Fine-tuning"}
NOT_AVAILABLE = ("Personalization is not available in this build: the `lipsync personalize` command is not "
                 "there yet. Renders use the bundled model or a model file chosen in the Render tab.")


class PersonalizePanel(JobPanel):
    useModel = Signal(str)  # a finished personalized model, for the Render tab
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Personalize", parent)
        self.clips = QListWidget()
        self.clips.setToolTip("Clips of the actor (video with their own voice): a few seconds to minutes in all")
        add, remove = QPushButton("Add clips\u2026"), QPushButton("Remove")
        self.base = QLineEdit()
        self.base.setPlaceholderText("bundled model")
        self.output = QLineEdit()
        self.output.setPlaceholderText("actor.safetensors")
        browse_output = QPushButton("\u2026")
        self.steps = QSpinBox()
        self.steps.setRange(10, 100000)
        self.steps.setValue(200)
        self.steps.setToolTip("Most fine-tuning steps: it stops earlier when the held-out footage stops improving")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.use = QPushButton("Use this model for renders")
        self.use.setEnabled(False)
        self.plot = LinePlot()

        clip_buttons = QHBoxLayout()
        clip_buttons.addWidget(add)
        clip_buttons.addWidget(remove)
        clip_buttons.addStretch(1)
        grid = QGridLayout()
        grid.addWidget(QLabel("Base model"), 0, 0)
        grid.addWidget(self.base, 0, 1, 1, 2)
        grid.addWidget(QLabel("Save as"), 1, 0)
        grid.addWidget(self.output, 1, 1)
        grid.addWidget(browse_output, 1, 2)
        grid.addWidget(QLabel("Steps"), 2, 0)
        grid.addWidget(self.steps, 2, 1)
        grid.addWidget(QLabel("Device"), 3, 0)
        grid.addWidget(self.device, 3, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Actor clips"))
        layout.addWidget(self.clips)
        layout.addLayout(clip_buttons)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.use)

        add.clicked.connect(self._add)
        remove.clicked.connect(lambda: [self.clips.takeItem(self.clips.row(i)) for i in self.clips.selectedItems()])
        browse_output.clicked.connect(self._browse_output)
        self.start.clicked.connect(self.personalize)
        self.use.clicked.connect(lambda: self.useModel.emit(self.output.text().strip()))
        self.job.progress.connect(self._progress)
        self.job.output.connect(self._output)
        self.job.finished.connect(self._finished)
        self.available: bool | None = None

    def check(self) -> bool:
        """Whether this build can personalize (looked up once); disables the tab's controls if not."""
        if self.available is None:
            self.available = command_available("personalize")
            if not self.available:
                self.status.setText(NOT_AVAILABLE)
                self.start.setEnabled(False)
        return self.available

    def showEvent(self, event) -> None:
        self.check()
        super().showEvent(event)

    def add_clips(self, paths) -> None:
        for path in paths:
            self.clips.addItem(str(path))

    def _add(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Actor clips", "", "Video (*.mp4 *.mov *.mkv *.avi *.mpg);;All files (*)")
        self.add_clips(paths)

    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the personalized model as", self.output.text(), "Model (*.safetensors)")
        if path:
            self.output.setText(path)

    def personalize(self) -> bool:
        if not self.check():
            return False
        clips = [self.clips.item(i).text() for i in range(self.clips.count())]
        output = self.output.text().strip()
        if not clips or not output:
            self._fail("add the actor's clips and choose where to save the model")
            return False
        arguments = ["personalize", *clips, "-o", output, "--steps", str(self.steps.value()),
                     "--device", self.device.currentText()]
        if command_available("personalize", "--progress-json"):
            arguments.append("--progress-json")
        if self.base.text().strip():
            arguments += ["--base", self.base.text().strip()]
        self.plot.clear()
        self.use.setEnabled(False)
        self.begin(arguments)
        return True

    def _progress(self, report: dict) -> None:
        stage, done, total, _, eta = self.advance(report)
        for name in ("loss", "sync"):
            if name in report:
                self.plot.add(name, done, report[name])
        self.status.setText(f"{STAGE_NAMES.get(stage, stage.capitalize())}: step {done} of {total}"
                            + (f" \u00b7 ETA {format_seconds(eta)}" if eta else ""))

    def _output(self, line: str) -> None:
        if self.progress.maximum() == 0:  # no machine-readable progress: show what the command says
            self.status.setText(line)

    def _finished(self, ok: bool, message: str) -> None:
        elapsed = self.ended(ok)
        if ok:
            self.status.setText(f"Done in {elapsed}: {self.output.text()}")
            self.use.setEnabled(Path(self.output.text()).is_file())
        elif message == "cancelled":
            self.status.setText("Cancelled")
        else:
            self._fail(message)

    def _fail(self, message: str) -> None:
        self.status.setText(f"Personalization failed: {message}")
        self.error.emit(message)
