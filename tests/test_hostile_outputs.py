"""Hostile input, outputs side: where a careless user sends a render, two renders at once, resumed
renders with other settings, a full disk, unexpected errors and what reaches the user's terminal.

Each test asserts what the user sees (exit status, the one line), that the inputs are byte-identical
afterwards and that nothing is left under the output's name or beside the inputs. Checks on the output
are made before any analysis: where a test says so, the face-track cache beside a fresh plate must not
appear.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lipsync_core.cli import main as cli_main
from lipsync_core.dub.outputs import DubOutput
from lipsync_core.dub.pipeline import Cancelled, Renderer, dub
from lipsync_core.face import analyze as analyze_module
from lipsync_core.face.track import Track
from lipsync_core.media import destination, images, writers
from lipsync_core.media.frames import open_plate
from lipsync_core.shot import Shot

from dub_fixtures import CLIP, dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_plate(shared_data, tmp_path) -> Path:
    """The clip in a folder of its own with no track cache: an analysis would leave one beside it."""
    folder = tmp_path / "plate"
    folder.mkdir()
    shutil.copy(shared_data / CLIP, folder / "plate.mpg")
    return folder / "plate.mpg"


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def _contents(*files: Path) -> list[bytes]:
    return [f.read_bytes() for f in files]


def _error(argv, capsys, code: int = 2) -> str:
    capsys.readouterr()  # what earlier commands printed
    assert cli_main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    # Progress bars may come first: the error is the last line, and one line.
    return err.splitlines()[-1]


def _model(tiny_model) -> list[str]:
    return ["--model", str(tiny_model), "--device", "cpu"]


# ------------------------------------------------------------------------------------ concurrency


class Holder:
    """Another process holding an output's lock, as a render writing it would; `kill()` ends it as a crash does."""

    def __init__(self, output: Path, frames=None):
        code = ("import sys\nfrom pathlib import Path\nfrom lipsync_core.media.locks import output_lock\n"
                f"with output_lock(Path({str(output)!r}), {frames!r}):\n    print('held', flush=True)\n    sys.stdin.read()\n")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert self.process.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def test_a_second_render_of_the_same_output_is_refused_and_a_killed_one_blocks_nothing(plate, dub_audio, tiny_model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    before = _contents(plate, dub_audio)
    holder = Holder(out)
    try:
        err = _error(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-3", *_model(tiny_model)], capsys)
        assert f"another render is writing {out} (pid {holder.process.pid}); wait for it to finish or choose another -o" in err
        assert not out.exists()
    finally:
        holder.kill()  # a render killed mid-way: its lock goes with it
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-3", *_model(tiny_model)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no lock file, no temporary left
    assert _contents(plate, dub_audio) == before


def test_farm_chunks_of_one_sequence_run_side_by_side_but_not_over_each_other(plate, dub_audio, tiny_model, tmp_path, capsys):
    out = tmp_path / "o.####.png"
    holder = Holder(out, (10, 14))
    try:
        err = _error(["dub", str(plate), str(dub_audio), "-o", str(tmp_path / "o.%04d.png"), "--frames", "12-16",
                      *_model(tiny_model)], capsys)
        assert f"another render is writing frames 12-16 of {tmp_path / 'o.%04d.png'} (pid {holder.process.pid})" in err
        assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "15-16", *_model(tiny_model)]) == 0
    finally:
        holder.kill()
    # Hidden beside them: the render record, and the lock file the killed holder could not remove (it binds nobody).
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["o.0015.png", "o.0016.png"]


# ------------------------------------------------------------------------------------ resume


def test_resume_with_other_settings_is_refused_and_broken_frames_are_rendered_again(plate, dub_audio, tiny_model, shared_data, tmp_path, capsys):
    out = tmp_path / "o.####.png"
    common = ["--frames", "10-13", "--batch", "4", *_model(tiny_model)]
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), *common]) == 0
    capsys.readouterr()
    finished = _snapshot(tmp_path)

    # Another dub, another mask setting, another batch: each would mix two renders in one sequence.
    other_audio = shared_data / CLIP
    for argv, named in (([str(other_audio)], "dub audio"), ([str(dub_audio), "--grow", "5"], "mask/motion options")):
        (tmp_path / "o.0013.png").unlink()  # an interrupted render
        partial = _snapshot(tmp_path)
        err = _error(["dub", str(plate), *argv, "-o", str(out), "--resume", *common], capsys)
        assert f"{out}: frames 10-12 were rendered with another" in err and named in err and "--overwrite" in err
        assert _snapshot(tmp_path) == partial
        (tmp_path / "o.0013.png").write_bytes(finished[str(tmp_path / "o.0013.png")])

    # A frame left empty, or cut short, by a crash is not a finished frame.
    (tmp_path / "o.0011.png").write_bytes(b"")
    (tmp_path / "o.0012.png").write_bytes(finished[str(tmp_path / "o.0012.png")][:100])
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--resume", *common]) == 0
    assert "resumed at frame 11" in capsys.readouterr().out
    assert _snapshot(tmp_path) == finished


def test_resume_keeps_nothing_it_cannot_vouch_for(plate, dub_audio, tiny_model, tmp_path, capsys):
    shutil.copy(plate.parent / "plate.mpg", tmp_path / "elsewhere.png")  # not a frame of this render
    (tmp_path / "o.0009.png").write_bytes(b"from another tool")
    err = _error(["dub", str(plate), str(dub_audio), "-o", str(tmp_path / "o.####.png"), "--frames", "10-11", "--resume",
                  *_model(tiny_model)], capsys)
    assert "frames 9 exist with no record of how they were rendered" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.png", "o.0009.png"]


# ------------------------------------------------------------------------------------ outputs, checked first


def test_an_existing_output_is_kept_unless_overwrite_is_given(plate, dub_audio, tiny_model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"yesterday's render")
    err = _error(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-3", *_model(tiny_model)], capsys)
    assert err.endswith(f"{out} exists: give --overwrite to replace it, or choose another -o")
    assert out.read_bytes() == b"yesterday's render"
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-3", "--overwrite", *_model(tiny_model)]) == 0
    assert out.read_bytes()[4:8] == b"ftyp"

    (tmp_path / "o.0002.png").write_bytes(b"kept")
    err = _error(["dub", str(plate), str(dub_audio), "-o", str(tmp_path / "o.####.png"), "--frames", "0-3", *_model(tiny_model)], capsys)
    assert "frames 2 exist: give --resume to keep them and render the rest, or --overwrite to render them again" in err
    assert (tmp_path / "o.0002.png").read_bytes() == b"kept" and not (tmp_path / "o.0000.png").exists()


def test_a_missing_output_folder_is_made_for_a_video_as_for_a_sequence(plate, dub_audio, tiny_model, tmp_path):
    for out in (tmp_path / "new" / "deep" / "out.mp4", tmp_path / "seq" / "o.####.png"):
        dub(plate, dub_audio, out, frames=(0, 1), model=tiny_model, device="cpu")
    assert (tmp_path / "new" / "deep" / "out.mp4").is_file() and (tmp_path / "seq" / "o.0001.png").is_file()


def test_bad_outputs_are_refused_before_any_analysis(fresh_plate, dub_audio, tiny_model, tmp_path, capsys, monkeypatch):
    cache = Shot.for_plate(fresh_plate).track_path()
    inputs = _snapshot(fresh_plate.parent)
    argv = ["dub", str(fresh_plate), str(dub_audio), "--frames", "0-3", *_model(tiny_model), "-o"]

    (tmp_path / "folder.mp4").mkdir()
    err = _error([*argv, str(tmp_path / "folder.mp4")], capsys)
    assert f"{tmp_path / 'folder.mp4'} is a folder: give the output a file name" in err
    assert list((tmp_path / "folder.mp4").iterdir()) == []

    (tmp_path / "file").write_bytes(b"x")
    err = _error([*argv, str(tmp_path / "file" / "out.mp4")], capsys)
    assert f"{tmp_path / 'file'} is a file, not a folder" in err

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(destination.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    err = _error([*argv, str(tmp_path / "new" / "out.mp4")], capsys)
    assert f"{tmp_path / 'new' / 'out.mp4'}: disk full: 1000 bytes free on /" in err
    assert not (tmp_path / "new").exists()  # the folder made for the output goes with the failed render
    monkeypatch.undo()

    read_only = tmp_path / "read_only"
    read_only.mkdir()
    _read_only(monkeypatch, read_only)
    err = _error([*argv, str(read_only / "out.mp4")], capsys)
    assert f"{read_only / 'out.mp4'}: cannot write in {read_only} (Read-only file system); choose another output folder" in err

    assert not cache.exists(), "the plate was analysed before the output was checked"
    assert _snapshot(fresh_plate.parent) == inputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.mp4", "plate", "read_only"]
    assert list(read_only.iterdir()) == []


def _read_only(monkeypatch, folder: Path) -> None:
    """`folder` as on a read-only mount (tests may run as root, whom a chmod does not stop)."""
    real = destination.tempfile.TemporaryFile

    def temporary_file(*args, dir=None, **kwargs):
        if Path(dir).resolve() == folder.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(destination.tempfile, "TemporaryFile", temporary_file)


def test_analyze_checks_where_it_writes_before_tracking(fresh_plate, tmp_path, capsys, monkeypatch):
    inputs = _snapshot(fresh_plate.parent)
    _read_only(monkeypatch, fresh_plate.parent)
    err = _error(["analyze", str(fresh_plate), "--frames", "0-2", "--no-preview"], capsys)
    assert f"cannot write in {fresh_plate.parent} (Read-only file system)" in err
    assert _snapshot(fresh_plate.parent) == inputs
    monkeypatch.undo()

    track = tmp_path / "missing" / "folder" / "plate.track.npz"
    assert cli_main(["analyze", str(fresh_plate), "--frames", "0-2", "--no-preview", "-o", str(track)]) == 0
    assert Track.load(track).frames.tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------ disk full


def test_a_full_disk_is_said_as_such_and_leaves_no_temporary_file(plate, fresh_plate, dub_audio, tiny_model, tmp_path, capsys, monkeypatch):
    class FullDisk:
        def __init__(self, path, mode):
            self.file = open(path, mode)

        def write(self, data):
            self.file.write(bytes(data)[:77824])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(images, "open", FullDisk, raising=False)
    out = tmp_path / "out" / "o.####.png"
    err = _error(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-1", *_model(tiny_model)], capsys)
    assert f"{tmp_path / 'out' / 'o.0000.png'}: disk full: " in err and " free on /" in err and "requested" not in err
    assert not (tmp_path / "out").exists()  # no frame, no temporary, no lock: the folder made for them goes too

    # The face-track cache: the render goes on without it, and nothing is left beside the plate.
    def full_disk(self, path):
        Path(path).write_bytes(b"half a track")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Track, "_write", full_disk)
    inputs = _snapshot(fresh_plate.parent)
    err = _error(["analyze", str(fresh_plate), "--frames", "0-2", "--no-preview"], capsys)
    assert f"{Shot.for_plate(fresh_plate).track_path()}: disk full: " in err
    assert analyze_module.shot_track(fresh_plate, Shot.for_plate(fresh_plate), (0, 2)).frames.tolist() == [0, 1, 2]
    assert _snapshot(fresh_plate.parent) == inputs


def test_a_disk_that_fills_while_a_video_is_encoded_stops_the_render_and_leaves_nothing(plate, dub_audio, tiny_model, tmp_path, capsys, monkeypatch):
    # A video's frames are encoded on a thread of their own: its error must still end the render, as one line.
    muxed, real_mux = [], writers.VideoWriter._mux

    def filling(self, packets):
        muxed.append(1)
        if len(muxed) > 6:
            raise writers.write_failed(self.path, OSError(errno.ENOSPC, "No space left on device"))
        real_mux(self, packets)

    monkeypatch.setattr(writers.VideoWriter, "_mux", filling)
    rendered = []
    monkeypatch.setattr(Renderer, "frames", lambda self, *span, real=Renderer.frames: (
        rendered.append(f.number) or f for f in real(self, *span)))
    out = tmp_path / "out" / "o.mp4"
    err = _error(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "0-39", *_model(tiny_model)], capsys)
    assert err.startswith(f"lipsync dub: error: {out}: disk full: ") and " free on /" in err
    assert len(rendered) < 40  # the render stopped when the encoder failed, not at the end of the shot
    assert not (tmp_path / "out").exists()  # no video, no temporary, no lock: the folder made for them goes too


def test_a_cancel_while_the_disk_fills_is_said_as_a_cancel_and_keeps_the_frames_written(plate, tmp_path, monkeypatch):
    # The writer thread fails on the third frame while the render is being cancelled: the user pressed Cancel, and
    # that is what they are told; the two frames written before stay for --resume, and nothing else is left.
    written = []

    def filling(path, image, text=None):
        if len(written) == 2:
            raise writers.write_failed(Path(path), OSError(errno.ENOSPC, "No space left on device"))
        written.append(path)
        real_png(path, image, text)

    real_png = writers.write_png
    monkeypatch.setattr(writers, "write_png", filling)
    with open_plate(plate, frames=(0, 3)) as source:
        frames = list(source)
        info = source.info
    out = tmp_path / "o.####.png"
    mask = np.zeros(frames[0].image.shape[:2], np.float32)
    with pytest.raises(Cancelled):
        with DubOutput(out, info, None, 0.0, [plate]) as writer:
            for frame in frames:
                writer.write(frame.number, frame.image, mask)
            raise Cancelled("cancelled")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.0000.png", "o.0001.png"]


# ------------------------------------------------------------------------------------ unexpected errors


def test_an_unexpected_error_is_one_line_and_a_log_or_with_debug_the_traceback(plate, dub_audio, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsomewhere deep")

    monkeypatch.setattr("lipsync_core.dub.cli.dub", bug)
    argv = ["dub", str(plate), str(dub_audio), "-o", str(tmp_path / "out.mp4")]
    err = _error(argv, capsys, code=1)
    assert err.startswith("lipsync dub: error: unexpected ZeroDivisionError: division by zero somewhere deep (the full traceback is in ")
    logs = list((tmp_path / "cache" / "lipsync" / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in err and "Traceback" in logs[0].read_text() and "in bug" in logs[0].read_text()
    for debug in ([*argv, "--debug"], ["--debug", *argv]):
        with pytest.raises(ZeroDivisionError):
            cli_main(debug)


# ------------------------------------------------------------------------------------ what reaches the terminal


def test_progress_json_puts_only_json_on_stdout_and_mediapipe_stays_quiet(fresh_plate, dub_audio, tiny_model, tmp_path, capfd, monkeypatch):
    real = analyze_module.shot_track

    def chatty(*args, **kwargs):
        print("a library printing to stdout")
        return real(*args, **kwargs)

    monkeypatch.setattr("lipsync_core.dub.pipeline.shot_track", chatty)
    out = tmp_path / "out.mp4"
    assert cli_main(["dub", str(fresh_plate), str(dub_audio), "-o", str(out), "--frames", "0-3", "--progress-json",
                     *_model(tiny_model)]) == 0
    printed = capfd.readouterr()
    messages = [json.loads(line) for line in printed.out.splitlines()]
    assert {"stage": "render", "done": 4, "total": 4} in messages and {"line": f"wrote {out}"} in messages
    assert "a library printing to stdout" in printed.err
    for noise in ("XNNPACK", "inference_feedback_manager", "absl::InitializeLog", "W0000"):
        assert noise not in printed.err
