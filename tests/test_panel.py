"""The Qt panel driven as an artist would, offscreen, on a real GRID clip (75 frames, 360x288, 25 fps)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from lipsync_core.face.track import Track  # noqa: E402
from lipsync_core.media.frames import open_plate  # noqa: E402
from lipsync_core.media.writers import open_writer  # noqa: E402
from lipsync_core.motion.stage import SHAPE_DECIMALS  # noqa: E402
from lipsync_core.provenance.credentials import sign_video  # noqa: E402
from lipsync_core.provenance.facts import DubFacts  # noqa: E402
from lipsync_core.provenance.identity import signing_identity  # noqa: E402
from lipsync_core.shot import Shot  # noqa: E402
from plugin.jobs import command_available  # noqa: E402
from plugin.jobs import Rate, format_seconds  # noqa: E402
from plugin.window import MainWindow  # noqa: E402

CLIP = "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg"
DUB = "audio/apt_cards_002.flac"  # 1.96 s of someone else's speech
# Face analysis of the clip has taken over 60 s on a loaded 2-core machine (tests run niced beside training).
ANALYSIS_TIMEOUT = 240000


@pytest.fixture(scope="module")
def analyzed(shared_data, tmp_path_factory) -> Path:
    """A shot folder with the clip analyzed once (the track cached beside it), reused by each test."""
    folder = tmp_path_factory.mktemp("shot")
    shutil.copy(shared_data / CLIP, folder / "plate.mpg")
    shutil.copy(shared_data / DUB, folder / "dub.flac")
    return folder


@pytest.fixture
def shot(analyzed, tmp_path) -> Path:
    """A fresh copy of the shot folder for one test (with the cached track once the first test made it)."""
    folder = tmp_path / "shot"
    shutil.copytree(analyzed, folder)
    cache = folder / "plate.mpg.lipsync.track.npz"
    if cache.is_file():  # the cache names its plate: point it at the copy, so the copy is not analyzed again
        track = Track.load(cache)
        track.plate = str(folder / "plate.mpg")
        track.save(cache)
    return folder


class Ticks:
    """Counts event-loop turns: a timer that only fires while the UI is processing events."""

    def __init__(self, interval_ms: int = 20):
        self.count = 0
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(interval_ms)

    def _tick(self) -> None:
        self.count += 1


def open_window(qtbot, folder: Path, audio: bool = True) -> MainWindow:
    window = MainWindow()
    window.confirm_close = False
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    assert window.open(plate=folder / "plate.mpg", audio=folder / "dub.flac" if audio else None), window.errors
    qtbot.waitUntil(lambda: window.document.track is not None, timeout=ANALYSIS_TIMEOUT)
    return window


def timeline_x(window: MainWindow, frame: int) -> int:
    return int(round(window.timeline.scale().x(frame)))


def test_open_shows_the_shot_and_analysis_keeps_the_ui_live(qtbot, analyzed):
    ticks = Ticks()
    window = MainWindow()
    window.confirm_close = False
    qtbot.addWidget(window)
    window.show()
    assert window.open(plate=analyzed / "plate.mpg", audio=analyzed / "dub.flac")
    assert window.document.track is None and window.analysis.running  # analysis runs in a thread
    before = ticks.count
    qtbot.waitUntil(lambda: window.document.track is not None, timeout=ANALYSIS_TIMEOUT)
    assert ticks.count - before > 5, "the event loop stalled during face analysis"
    assert (analyzed / "plate.mpg.lipsync.track.npz").is_file()  # cached where `lipsync dub` looks

    info = window.info.text()
    assert "360\u00d7288" in info and "25 fps" in info and "frames 0\u201374 (75)" in info and "faces: 1" in info
    assert (window.timeline.first, window.timeline.last) == (0, 74)
    assert window.waveform.audio is not None and "dub.flac" in window.waveform.label
    assert window.viewer.final is not None and window.viewer.final.max() > 0.9  # the mask is on the face


def test_scrub_play_zoom_and_overlays(qtbot, shot):
    window = open_window(qtbot, shot)
    document, viewer = window.document, window.viewer

    qtbot.mouseClick(window.timeline, Qt.MouseButton.LeftButton, pos=QPoint(timeline_x(window, 40), 20))
    assert document.frame == 40
    assert window.transport.spin.value() == 40 and window.waveform.current == 40
    np.testing.assert_array_equal(document.image(), document.image(40))
    qtbot.mouseClick(window.waveform, Qt.MouseButton.LeftButton, pos=QPoint(timeline_x(window, 10), 20))
    assert document.frame == 10
    window.transport.spin.setValue(60)
    assert document.frame == 60

    window.transport.start()
    qtbot.waitUntil(lambda: document.frame >= 64, timeout=5000)
    window.transport.toggle()
    assert not window.transport.playing

    viewer.set_zoom(2.0)
    assert viewer.zoom == 2.0 and window.transport.zoom_label.text() == "200%"
    viewer.set_zoom(None)

    with_overlays = viewer.grab().toImage()
    for box in window.overlays.values():
        box.setChecked(False)
    assert not (viewer.show_landmarks or viewer.show_auto or viewer.show_final or viewer.show_ids)
    plain = viewer.grab().toImage()
    assert plain != with_overlays
    window.overlays["final"].setChecked(True)
    assert viewer.show_final and viewer.grab().toImage() not in (plain, with_overlays)


def sound_player(window: MainWindow, monkeypatch, output: bool):
    """The transport's media player, on a machine with (`output`) or without an audio output device.
    With one, `play` only records the position asked for: a test must not depend on a sound card."""
    player = window.transport.sound.player
    assert player is not None, "Qt Multimedia did not load (PySide6-Addons; libpulse0 from tools/system-deps.sh)"
    monkeypatch.setattr("plugin.transport.audio_output_present", lambda: output)
    plays = []
    monkeypatch.setattr(player, "play", lambda: plays.append(player.position()))
    return player, plays


def test_play_sounds_the_dub_from_the_current_frame_and_follows_a_scrub(qtbot, shot, monkeypatch):
    window = open_window(qtbot, shot)
    document, transport = window.document, window.transport
    player, plays = sound_player(window, monkeypatch, output=True)
    document.set_frame(40)
    transport.start()
    assert transport.sound_label.text() == "Sound: the dub audio"
    assert player.source().toLocalFile() == str(shot / "dub.flac")
    qtbot.waitUntil(lambda: len(plays) > 0, timeout=10000)  # once loaded: positioned, then played
    assert plays[0] == 1600  # frame 40 of a shot starting at 0, at 25 fps
    qtbot.mouseClick(window.timeline, Qt.MouseButton.LeftButton, pos=QPoint(timeline_x(window, 10), 20))
    assert plays[-1] == 400 and player.position() == 400  # a scrub while playing moves the sound too
    qtbot.mouseClick(window.timeline, Qt.MouseButton.LeftButton, pos=QPoint(timeline_x(window, 60), 20))
    assert plays == [1600, 400]  # 2.4 s is past the end of the 1.96 s dub: silence, not the dub over again
    transport.stop()
    assert not transport.playing and not transport.sound.active


def test_play_sounds_the_plate_without_dub_audio(qtbot, shot, monkeypatch):
    window = open_window(qtbot, shot, audio=False)
    player, plays = sound_player(window, monkeypatch, output=True)
    window.document.set_frame(25)
    window.transport.start()
    assert window.transport.sound_label.text() == "Sound: the plate's audio"
    assert player.source().toLocalFile() == str(shot / "plate.mpg")
    qtbot.waitUntil(lambda: len(plays) > 0, timeout=10000)
    assert plays[0] == 1000
    window.transport.stop()


def test_play_without_an_audio_device_plays_the_frames_and_says_so(qtbot, shot, monkeypatch):
    window = open_window(qtbot, shot)
    document, transport = window.document, window.transport
    player, plays = sound_player(window, monkeypatch, output=False)
    document.set_frame(10)
    transport.start()
    assert transport.sound_label.text() == "No audio output: the dub audio is not heard"
    qtbot.waitUntil(lambda: document.frame >= 16, timeout=5000)
    assert plays == [] and player.source().isEmpty()  # the player is left alone
    transport.toggle()
    assert not transport.playing
    document.set_frame(30)  # and the panel works on
    assert transport.spin.value() == 30


def test_keyed_grow_changes_the_sidecar_and_the_mask_exactly_there(qtbot, shot):
    window = open_window(qtbot, shot)
    document, row = window.document, window.overrides.rows["grow"]
    untouched = {f: document.final_mask(f).sum() for f in (20, 35, 49, 50, 60)}

    document.set_frame(20)
    qtbot.mouseClick(row.key, Qt.MouseButton.LeftButton)  # key grow = 0 at 20
    document.set_frame(50)
    row.spin.setValue(15.0)  # a keyed control gets a key where its value is changed
    assert document.keys("grow") == [20, 50]
    assert window.timeline.keys == {20, 50}
    assert row.key.text() == "\u25c6"  # a key on this frame

    assert window.save()
    saved = json.loads((shot / "plate.mpg.lipsync.json").read_text())
    assert saved["mask"] == {"grow": {"keys": [[20, 0.0], [50, 15.0]], "interpolation": "linear"}}
    assert Shot.load(shot / "plate.mpg.lipsync.json").overrides(50).grow == 15.0

    # Linear between the keys: unchanged at 20, half grown at 35, fully at 50 and after.
    area = {f: document.final_mask(f).sum() for f in untouched}
    assert area[20] == pytest.approx(untouched[20])
    assert untouched[35] < area[35] < area[50]
    assert area[50] > untouched[50] * 1.1 and area[60] > untouched[60] * 1.1
    assert window.viewer.final.sum() == pytest.approx(area[50])  # the viewer shows it

    # Held keys: the change starts exactly at frame 50.
    row.interpolation.setCurrentText("hold")
    assert document.final_mask(49).sum() == pytest.approx(untouched[49])
    assert document.final_mask(50).sum() == pytest.approx(area[50])

    # Undo/redo walks the same steps back and forth.
    document.undo.undo()  # hold -> linear
    document.undo.undo()  # the key at 50
    assert document.keys("grow") == [20]
    document.undo.redo()
    assert document.keys("grow") == [20, 50]
    document.set_frame(50)
    qtbot.mouseClick(row.key, Qt.MouseButton.LeftButton)  # the key button removes the key here
    assert document.keys("grow") == [20]


def test_motion_curve_follows_the_articulation_gain_and_a_keyed_close(qtbot, shot):
    window = open_window(qtbot, shot)
    document, curve = window.document, window.motion_curve
    qtbot.waitUntil(lambda: curve.curves is not None, timeout=30000)
    before = curve.curves.opening.copy()
    assert before.max() > 2 and "actor style" in curve.message

    window.motion.rows["gain"].spin.setValue(2.0)  # scale the whole curve
    qtbot.waitUntil(lambda: curve.curves is not None and curve.curves.opening.max() > before.max() * 1.5, timeout=30000)
    document.set_frame(30)
    window.motion.rows["open"].spin.setValue(-1.0)
    qtbot.mouseClick(window.motion.rows["open"].key, Qt.MouseButton.LeftButton)  # key "closed" at 30
    # Closed: the opening is the rest's, to the rounding of the shapes' points (two of them, and the rest's).
    closed = 3 * 10.0**-SHAPE_DECIMALS
    qtbot.waitUntil(lambda: abs(curve.curves.opening[30]) < closed, timeout=30000)
    assert document.keys("open") == [30]

    assert window.save()
    saved = json.loads((shot / "plate.mpg.lipsync.json").read_text())
    assert saved["motion"] == {"gain": 2.0, "open": {"keys": [[30, -1.0]], "interpolation": "linear"}}
    document.undo.undo()
    document.undo.undo()
    assert "open" not in document.shot.motion


def test_paint_and_erase_strokes(qtbot, shot):
    window = open_window(qtbot, shot)
    document, viewer = window.document, window.viewer
    document.set_frame(30)
    landmarks = document.track.landmarks(30)
    forehead = landmarks[10, :2] + [0, 20]  # above the eyes: never in the automatic mask
    mouth = landmarks[13, :2]  # inner upper lip: always in it
    assert document.final_mask(30)[int(forehead[1]), int(forehead[0])] == 0

    qtbot.mouseClick(window.paint.brush, Qt.MouseButton.LeftButton)
    assert viewer.brush
    start = viewer.to_widget(QPointF(*forehead)).toPoint()
    end = viewer.to_widget(QPointF(forehead[0] + 30, forehead[1])).toPoint()
    qtbot.mousePress(viewer, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewer, pos=end)
    qtbot.mouseRelease(viewer, Qt.MouseButton.LeftButton, pos=end)
    painted = document.final_mask(30)
    assert painted[int(forehead[1]), int(forehead[0]) + 15] == pytest.approx(1.0)
    assert 30 in window.timeline.painted
    assert document.final_mask(31)[int(forehead[1]), int(forehead[0])] == 0  # only on this frame

    window.paint.erase_mode.setChecked(True)
    at_mouth = viewer.to_widget(QPointF(*mouth)).toPoint()
    qtbot.mousePress(viewer, Qt.MouseButton.LeftButton, pos=at_mouth)
    qtbot.mouseRelease(viewer, Qt.MouseButton.LeftButton, pos=at_mouth)
    assert document.final_mask(30)[int(mouth[1]), int(mouth[0])] == 0

    document.undo.undo()  # the erase
    assert document.final_mask(30)[int(mouth[1]), int(mouth[0])] > 0.9
    assert window.save()
    saved = Shot.load(shot / "plate.mpg.lipsync.json")
    assert [(p.path, p.frames, p.mode) for p in saved.painted] == [("roto/plate.mpg.paint.####.png", (30, 30), "replace")]
    assert (shot / "roto" / "plate.mpg.paint.0030.png").is_file()
    # What the render reads back from the sidecar is the painted mask.
    read = saved.apply_painted(np.zeros_like(painted), 30)
    assert np.abs(read - painted).max() < 1e-3
    # Reopening the sidecar brings the painting back for more work.
    assert window.open(sidecar=shot / "plate.mpg.lipsync.json")
    assert sorted(document.painted) == [30] and np.abs(document.painted[30] - painted).max() < 1e-3
    document.set_frame(30)

    qtbot.mouseClick(window.paint.clear, Qt.MouseButton.LeftButton)
    assert 30 not in document.painted
    assert window.save()
    assert Shot.load(shot / "plate.mpg.lipsync.json").painted == []
    assert not (shot / "roto" / "plate.mpg.paint.0030.png").exists()


def test_bypass_range_and_face_choice(qtbot, shot):
    window = open_window(qtbot, shot)
    document, bypass = window.document, window.bypass
    bypass.first.setValue(60)
    bypass.last.setValue(65)
    qtbot.mouseClick(bypass.add, Qt.MouseButton.LeftButton)
    document.set_frame(62)
    assert "bypassed" in window.viewer.message and window.viewer.final.max() == 0
    assert window.timeline.bypass == [(60, 65)]
    qtbot.mouseClick(bypass.toggle, Qt.MouseButton.LeftButton)  # un-bypass 62 alone
    assert document.shot.bypass == [(60, 61), (63, 65)]
    assert window.save()
    assert json.loads((shot / "plate.mpg.lipsync.json").read_text())["bypass"] == [[60, 61], [63, 65]]

    # A click on the face picks it (the one face here); a click beside it changes nothing.
    nose = document.track.landmarks(62)[1, :2]
    qtbot.mouseClick(window.viewer, Qt.MouseButton.LeftButton, pos=window.viewer.to_widget(QPointF(*nose)).toPoint())
    assert document.shot.face == 0 and window.face.currentData() == 0
    assert document.face_at(5, 5) is None


def test_appearance_clips_added_in_the_panel_are_the_sidecars(qtbot, shot, shared_data, tmp_path, monkeypatch):
    """Clips of the actor added on the Motion tab go into the sidecar that `lipsync dub` (the Render tab's, batch's,
    a node's) reads: one inside the shot folder by its path there, one from elsewhere by its full path."""
    window = open_window(qtbot, shot)
    panel = window.appearance
    take = shot / "takes" / "take2.mpg"
    take.parent.mkdir()
    shutil.copy(shared_data / CLIP, take)
    reel = tmp_path / "reels" / "interview.mpg"
    reel.parent.mkdir()
    shutil.copy(shared_data / CLIP, reel)
    (shot / "broken.mp4").write_bytes(b"not a video")
    chosen = []
    monkeypatch.setattr("plugin.appearance.QFileDialog.getOpenFileName", lambda *args: (str(chosen[-1]), ""))
    for clip in (take, reel, shot / "broken.mp4", shot / "plate.mpg"):
        chosen.append(clip)  # what the artist picks in the file dialog
        qtbot.mouseClick(panel.add, Qt.MouseButton.LeftButton)
    assert [panel.clips.item(i).text() for i in range(panel.clips.count())] == ["take2.mpg", "interview.mpg"]
    assert "broken.mp4" in window.errors[-2] and "the shot's plate" in window.errors[-1]  # messages, nothing added

    assert window.save()
    saved = json.loads((shot / "plate.mpg.lipsync.json").read_text())
    assert saved["appearance"] == ["takes/take2.mpg", str(reel)] and saved["version"] == 3
    assert Shot.load(shot / "plate.mpg.lipsync.json").appearance_paths == [take, reel]

    panel.clips.setCurrentRow(0)
    qtbot.mouseClick(panel.remove, Qt.MouseButton.LeftButton)
    assert window.document.shot.appearance == [str(reel)] and panel.clips.count() == 1
    window.document.undo.undo()
    assert window.document.shot.appearance == ["takes/take2.mpg", str(reel)] and panel.clips.count() == 2


def test_errors_are_messages_not_crashes(qtbot, shot):
    window = MainWindow()
    window.confirm_close = False
    qtbot.addWidget(window)
    (shot / "broken.mp4").write_bytes(b"not a video")
    assert not window.open(plate=shot / "broken.mp4")
    assert "broken.mp4" in window.errors[-1]
    (shot / "bad.lipsync.json").write_text('{"version": 1, "source": "plate.mpg", "mask": {"grow": "big"}}')
    assert not window.open(sidecar=shot / "bad.lipsync.json")
    assert "mask.grow" in window.errors[-1]
    assert window.open(plate=shot / "plate.mpg")  # and the panel works on
    qtbot.waitUntil(lambda: window.document.track is not None, timeout=ANALYSIS_TIMEOUT)
    assert not window.render_panel.render()
    assert "dub audio" in window.errors[-1]


def test_personalize_tab_says_when_it_is_not_available(qtbot, monkeypatch):
    monkeypatch.setattr("plugin.personalize.command_available", lambda name, option=None: False)  # an older build
    window = MainWindow()
    qtbot.addWidget(window)
    panel = window.personalize
    window.show()
    window.side.setCurrentWidget(panel)
    assert panel.available is False
    assert not panel.start.isEnabled() and "not available in this build" in panel.status.text()
    assert not panel.personalize()  # nothing is started


def test_personalize_progress_feeds_the_bar_and_the_loss_plot(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    panel = window.personalize
    for step, loss, sync in ((10, 0.9, 0.5), (20, 0.7, 0.6), (30, 0.6, 0.65)):
        panel._progress({"stage": "train", "done": step, "total": 100, "loss": loss, "sync": sync})
    assert panel.progress.value() == 30 and panel.progress.maximum() == 100
    assert panel.plot.series == {"loss": [(10, 0.9), (20, 0.7), (30, 0.6)], "sync": [(10, 0.5), (20, 0.6), (30, 0.65)]}
    assert "step 30 of 100" in panel.status.text()


# ------------------------------------------------------------------------------------ render


def test_fps_and_eta_time_a_stage_from_where_the_one_before_ended():
    rate = Rate(now=0.0)
    assert rate.update("analyze", 10, 75, now=1.0) == (10.0, 6.5)
    # Rendering reports a batch at once: it is timed from the last analyze report, not between batches.
    assert rate.update("render", 8, 16, now=5.0) == (2.0, 4.0)
    assert rate.update("render", 16, 16, now=9.0) == (2.0, 0.0)
    assert format_seconds(65) == "1:05" and format_seconds(3725) == "1:02:05"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight model file of the CPU config: enough to exercise the render path."""
    import torch

    from lipsync_core.models.checkpoint import save_checkpoint
    from lipsync_core.models.config import get_config
    from lipsync_core.models.stylelipsync import StyleLipSync
    from lipsync_core.models.syncnet import SyncNet

    torch.manual_seed(0)
    config = get_config("cpu")
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, {"generator": StyleLipSync(config), "syncnet": SyncNet(config)}, config)
    return path


needs_dub = pytest.mark.skipif(not command_available("dub", "--progress-json"),
                               reason="this build's `lipsync` has no `dub --progress-json`")


@pytest.mark.slow
@pytest.mark.skipif(not command_available("personalize"), reason="this build has no `lipsync personalize`")
def test_personalize_failure_is_a_readable_message(qtbot, tmp_path, tiny_model):
    window = MainWindow()
    qtbot.addWidget(window)
    panel = window.personalize
    panel.add_clips([tmp_path / "missing.mp4"])
    panel.base.setText(str(tiny_model))
    panel.output.setText(str(tmp_path / "actor.safetensors"))
    with qtbot.waitSignal(panel.job.finished, timeout=240000) as finished:
        assert panel.personalize()
    assert finished.args[0] is False and "missing.mp4" in finished.args[1]
    assert "missing.mp4" in window.errors[-1] and panel.start.isEnabled()
    assert not (tmp_path / "actor.safetensors").exists()


@needs_dub
@pytest.mark.slow
def test_render_a_few_frames_then_compare(qtbot, shot, tiny_model):
    window = open_window(qtbot, shot)
    panel = window.render_panel
    panel.model.setText(str(tiny_model))
    panel.device.setCurrentText("cpu")
    panel.whole.setChecked(False)
    panel.first.setValue(8)
    panel.last.setValue(15)
    output = shot / "renders" / "plate_dub.mp4"
    assert panel.output.text() == str(output)  # the default
    reports, shown = [], []
    panel.job.progress.connect(reports.append)
    panel.job.progress.connect(lambda _: shown.append(panel.status.text()))
    ticks = Ticks()
    with qtbot.waitSignal(panel.job.finished, timeout=240000) as finished:
        assert panel.render()
        assert panel.running and not panel.start.isEnabled() and panel.cancel.isEnabled()
    assert finished.args[0], finished.args[1]
    assert ticks.count > 20, "the UI stopped processing events during the render"
    assert output.is_file() and not list((shot / "renders").glob(".plate_dub.mp4*"))
    assert reports and reports[-1] == {"stage": "render", "done": 8, "total": 8}
    assert any("Rendering: 8 of 8 frames" in text and "fps" in text and "ETA 0:00" in text for text in shown), shown
    assert "Done" in panel.status.text()

    # Compare: the window switches to original | dubbed on the first rendered frame.
    assert window.views.currentIndex() == 1 and window.document.frame == 8
    dubbed = window.dubbed.image(8)
    assert dubbed.shape == (288, 360, 3)
    assert window.dubbed.image(20) is None  # not rendered
    window.compare_mode.setCurrentText("wipe")
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=QPoint(window.compare.width() // 4, 100))
    assert window.compare.wipe < 0.5


def test_a_render_over_an_existing_result_asks_first(qtbot, shot, monkeypatch):
    window = open_window(qtbot, shot)
    panel = window.render_panel
    output = shot / "renders" / "kept.mp4"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"an earlier render")
    panel.output.setText(str(output))
    asked = []
    monkeypatch.setattr("plugin.render.QMessageBox.question",
                        lambda *args: asked.append(args[2]) or QMessageBox.StandardButton.No)
    assert not panel.render() and not panel.running
    assert asked == [f"{output} exists. Render over it?"] and output.read_bytes() == b"an earlier render"
    output.unlink()


@needs_dub
@pytest.mark.slow
def test_cancel_a_render_leaves_nothing_under_the_output_name(qtbot, shot, tiny_model):
    window = open_window(qtbot, shot)
    panel = window.render_panel
    panel.model.setText(str(tiny_model))
    panel.device.setCurrentText("cpu")
    output = shot / "renders" / "cancelled.mp4"
    panel.output.setText(str(output))
    with qtbot.waitSignal(panel.job.progress, timeout=240000):
        assert panel.render()
    with qtbot.waitSignal(panel.job.finished, timeout=60000) as finished:
        qtbot.mouseClick(panel.cancel, Qt.MouseButton.LeftButton)
    assert finished.args == [False, "cancelled"]
    assert not output.exists()
    assert list((shot / "renders").iterdir()) == []
    assert "Cancelled" in panel.status.text() and panel.start.isEnabled()


def test_face_ids_and_a_click_choosing_the_face_to_dub(qtbot, shared_data, tmp_path):
    """A multi-face stage clip: both faces get their id; clicking the smaller one dubs it."""
    shutil.copy(shared_data / "assets/ageitgey_examples_short_hamilton_clip.mp4", tmp_path / "stage.mp4")
    (tmp_path / "stage.mp4.lipsync.json").write_text('{"version": 1, "source": "stage.mp4", "frames": [0, 9]}')
    window = MainWindow()
    window.confirm_close = False
    qtbot.addWidget(window)
    window.show()
    assert window.open(sidecar=tmp_path / "stage.mp4.lipsync.json"), window.errors
    qtbot.waitUntil(lambda: window.document.track is not None, timeout=120000)
    document, viewer = window.document, window.viewer
    assert (window.timeline.first, window.timeline.last) == (0, 9) and "faces: 2" in window.info.text()
    assert [face_id for face_id, _ in viewer._faces] == [0, 1] and document.shot.face == 0

    other = document.track.landmarks(0, 1)
    qtbot.mouseClick(viewer, Qt.MouseButton.LeftButton, pos=viewer.to_widget(QPointF(*other[1, :2])).toPoint())
    assert document.shot.face == 1 and window.face.currentData() == 1
    ys, xs = np.nonzero(viewer.final > 0.5)  # the mask moved onto that face
    (x0, y0), (x1, y1) = other[:, :2].min(axis=0), other[:, :2].max(axis=0)
    assert x0 <= xs.mean() <= x1 and y0 <= ys.mean() <= y1 + 0.3 * (y1 - y0)
    assert window.save() and Shot.load(tmp_path / "stage.mp4.lipsync.json").face == 1
    document.undo.undo()
    assert document.shot.face == 0


def test_an_opened_dub_shows_what_its_credentials_say(qtbot, shared_data, tmp_path):
    """A dub delivered back opens with what it says it is beside its format (from its signed metadata)."""
    dubbed = tmp_path / "dubbed.mp4"
    facts = DubFacts("plate.mpg", "0" * 64, "dub.wav", "1" * 64, "actor.safetensors", "2" * 64, "generator", (0, 4))
    identity = signing_identity()
    with open_plate(shared_data / CLIP, frames=(0, 4)) as source, open_writer(
            dubbed, fps=25, width=360, height=288,
            seal=lambda path: sign_video(path, dubbed.name, facts, list(range(5)), identity)) as out:
        for frame in source:
            out.write(frame.image)
    window = MainWindow()
    window.confirm_close = False
    qtbot.addWidget(window)
    assert window.open(plate=dubbed), window.errors
    info = window.info.text()
    assert "a dub: lipsync" in info and "actor.safetensors" in info and "content credentials valid" in info
    qtbot.waitUntil(lambda: window.document.track is not None, timeout=ANALYSIS_TIMEOUT)
