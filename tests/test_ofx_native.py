"""The native OpenFX bundle (`make ofx`) driven by a C host of our own (tests/ofx_host/host.c) the way a
host drives a plug-in, on a real clip: described in both contexts, frames rendered out of order and at a
proxy scale, the analysis cancelled and made again; its frames equal `lipsync dub`'s for the same pixels."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dub_fixtures import dub_audio, plate, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.cli import main as cli_main
from lipsync_core.face.track import Track
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_image
from lipsync_core.media.writers import open_writer
from lipsync_core.ops.generate import GENERATE
from lipsync_core.provenance import watermark
from lipsync_core.shot import PaintedMask, Shot
from nodes.ofx.params import HEADER, PARAMS, header

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "build" / "ofx" / "LipSync.ofx.bundle"
BINARY = BUNDLE / "Contents" / "Linux-x86-64" / "LipSync.ofx"
HOST = REPO / "build" / "ofx" / "ofx_host"
FIRST, LAST = 1001, 1012  # a 12-frame linear float plate made from the real clip
WIDTH, HEIGHT = 360, 288
BYPASSED = 1004
COMPARED = [1007, 1003, 1008, 1005]  # rendered out of order (scrubbing), and the bypassed frame among them


@pytest.fixture(scope="module")
def built():
    if not (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")):
        pytest.skip("no C compiler: the native OFX bundle is not built")
    subprocess.run(["make", "-s", "ofx", "ofx-host"], cwd=REPO, check=True, capture_output=True)
    return BINARY


def test_params_header_is_made_from_the_schema():
    assert HEADER.read_text(encoding="utf-8") == header(), "stale: run `python -m nodes.ofx.params`"


def test_bundle_layout_and_exports(built):
    assert (BUNDLE / "Contents" / "Info.plist").read_text().count("<string>LipSync.ofx</string>") == 1
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(built)], capture_output=True, text=True,
                             check=True).stdout
    exported = {line.split()[-1] for line in symbols.splitlines() if " T " in line}
    assert exported == {"OfxGetNumberOfPlugins", "OfxGetPlugin"}


def _host(args, tmp_path, check=True, python=sys.executable):
    env = dict(os.environ, LIPSYNC_PYTHON=python, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    result = subprocess.run([str(HOST), str(BINARY), *map(str, args)], capture_output=True, text=True, env=env,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Each node's scratch folder (plate snapshot, worker log) goes with it.
    assert not list((tmp_path / "tmp").iterdir())
    return result.stdout.splitlines()


def test_describe_offers_the_schema_parameters_in_both_contexts(built, tmp_path):
    lines = _host(["--source", 1, 4, 4, tmp_path], tmp_path)
    assert "plugins 1" in lines and "plugin org.lipsync.dub OfxImageEffectPluginAPI 1 0.1" in lines
    assert {"context OfxImageEffectContextFilter", "context OfxImageEffectContextGeneral"} <= set(lines)
    assert "threadsafety OfxImageEffectRenderInstanceSafe tiles 0 temporal 1" in lines
    schema = {p.name for p in GENERATE.inputs + GENERATE.params if p.node and p.type not in ("clip", "mask")}
    assert schema == {p.name for p in PARAMS} and {"audio", "audio_offset", "grow"} <= schema
    for context in ("OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"):
        clips = {line.split()[2]: line.split(maxsplit=3)[3] for line in lines if line.startswith(f"clip {context} ")}
        assert clips == {"Source": "optional=0 mask=0 components=OfxImageComponentRGBA",
                         "Mask": "optional=1 mask=1 components=OfxImageComponentAlpha,OfxImageComponentRGBA",
                         "Output": "optional=0 mask=0 components=OfxImageComponentRGBA"}
        params = {line.split()[2]: line.split()[3:] for line in lines if line.startswith(f"param {context} ")}
        assert set(params) == schema | {"analyse", "analysis_run"}
        assert params["grow"] == ["OfxParamTypeDouble", "animates=1", "secret=0"]
        assert params["audio"] == ["OfxParamTypeString", "animates=0", "secret=0"]
        assert params["analyse"][0] == "OfxParamTypePushButton" and params["analysis_run"][2] == "secret=1"


@pytest.fixture(scope="module")
def float_plate(plate, tmp_path_factory):
    """Linear float32 EXR frames 1001-1012 of the real clip, a sidecar bypassing one frame, and the same
    frames as the host hands them over: float32 RGBA (opaque), rows bottom-up, at full and half scale."""
    folder = tmp_path_factory.mktemp("ofx_plate")
    pattern = folder / "plate.####.exr"
    with open_plate(plate, frames=(0, LAST - FIRST)) as source, \
            open_writer(pattern, fps=25, width=WIDTH, height=HEIGHT, pixel_type="float") as out:
        # float32, as the plug-in hands the host's pixels to the core: the same values are composited and marked.
        for frame in source:
            out.write(srgb_decode(to_display(frame.image)).astype(np.float32), frame.number + FIRST)
    shot = Shot.for_plate(pattern)
    shot.bypass = [(BYPASSED, BYPASSED)]
    shot.save()
    frames = {}
    (folder / "full").mkdir()
    (folder / "half").mkdir()
    with open_plate(pattern) as sequence:
        for frame in sequence:
            rgba = np.concatenate([frame.image.astype(np.float32), np.ones((HEIGHT, WIDTH, 1), np.float32)], axis=2)
            frames[frame.number] = rgba
            rgba[::-1].tofile(folder / "full" / f"{frame.number}.raw")
            half = cv2.resize(rgba, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
            np.ascontiguousarray(half[::-1]).tofile(folder / "half" / f"{frame.number}.raw")
    return pattern, shot.path, folder, frames


def test_without_a_python_for_the_worker_the_render_says_so(built, float_plate, tmp_path):
    folder = float_plate[2]
    lines = _host(["--range", FIRST, LAST, "--source", 1, WIDTH, HEIGHT, folder / "full", "render:1003"], tmp_path,
                  python=str(tmp_path / "missing" / "python"))
    errors = [line for line in lines if line.startswith("message OfxMessageError")]
    assert errors == [f"message OfxMessageError LipSync: no Python for LipSync at {tmp_path}/missing/python: set "
                      f"LIPSYNC_PYTHON, or run `make setup` in {REPO}"]
    assert "failed 1003 1 1" in lines and "violations 0" in lines


def _rendered(out: Path, number: int, scale: float, width: int, height: int) -> np.ndarray:
    return np.fromfile(out / f"{number}@{scale:g}.raw", np.float32).reshape(height, width, 4)[::-1]


def _renders(lines):
    """{frame: [the Source frames fetched in its render]} in render order, per render."""
    renders, fetched = [], []
    for line in lines:
        if line.startswith("fetch Source"):
            fetched.append(int(float(line.split()[2])))
        elif line.startswith(("rendered", "failed")):
            renders.append((line.split()[0], int(float(line.split()[1])), float(line.split()[2]), fetched))
            fetched = []
    return renders


def test_host_renders_out_of_order_equal_lipsync_dub(built, float_plate, dub_audio, tiny_model, tmp_path):
    pattern, sidecar, folder, source = float_plate
    # What `lipsync dub` makes of these frames, watermark included: the effect marks its frames as the CLI does.
    rendered = tmp_path / "dub" / "out.####.exr"
    assert cli_main(["dub", str(pattern), str(dub_audio), "-o", str(rendered), "--frames", "1003-1008",
                     "--model", str(tiny_model), "--device", "cpu", "--batch", "4"]) == 0

    out = tmp_path / "out"
    out.mkdir()
    device = GENERATE.param("device").choices.index("cpu")
    steps = ["abort-after:12", "render:1007",  # cancelled at the end of reading the shot: the worker is stopped
             "render:1007", f"render:{BYPASSED}", "render:1003", "render:1008", "render:1005@0.5",
             "press:analyse", "render:1005"]
    lines = _host(["--context", "filter", "--out", out, "--range", FIRST, LAST,
                   "--source", 1, WIDTH, HEIGHT, folder / "full",
                   "--source", 0.5, WIDTH // 2, HEIGHT // 2, folder / "half",
                   "--param", f"audio={dub_audio}", "--param", f"model={tiny_model}", "--param", f"shot={sidecar}",
                   "--param", "batch=4", "--param", f"device={device}", *steps], tmp_path)

    whole = list(range(FIRST, LAST + 1))
    renders = _renders(lines)
    assert [(r[0], r[1], r[2]) for r in renders] == [
        ("failed", 1007, 1.0), ("rendered", 1007, 1.0), ("rendered", 1003, 1.0), ("rendered", 1008, 1.0),
        ("rendered", 1005, 0.5), ("rendered", 1005, 1.0)]
    assert not [line for line in lines if line.startswith("message")]  # a cancel is not an error
    # The analysis reads the whole shot (as GetFramesNeeded declared), once, in render; the other renders read
    # their own frame only, also at another render scale; Analyse makes the next render read the shot again.
    assert [r[3] for r in renders] == [whole, whole + [1007], [1003], [1008], [1005], whole + [1005]]
    assert "needed 1007 Source 1001 1012" in lines and "needed 1003 Source 1003 1003" in lines
    assert not [line for line in lines if line.endswith("Mask 1001 1012")]  # not connected: not asked for
    assert f"identity {BYPASSED} Source {BYPASSED}" in lines
    assert "violations 0" in lines  # fetched only in render, within the frames declared; progress in pairs

    track = Track.load(Shot.for_plate(pattern).track_path())  # the track `lipsync dub` cached beside the plate
    face = track.face(0)
    for number in COMPARED:
        image = _rendered(out, number, 1, WIDTH, HEIGHT)
        expected = read_image(rendered.parent / f"out.{number}.exr")
        original = source[number]
        # The same float computation as `lipsync dub`, watermark included.
        assert np.array_equal(image[..., :3], expected), f"frame {number} differs from lipsync dub"
        assert np.any(image != original, axis=2).any(), f"frame {number}: the face was not redrawn"
        assert np.array_equal(image[..., 3], original[..., 3])
        # Outside the face's mask (grown by a few pixels of interpolation) the host's own pixels, to the bit.
        mask = face.mask(track.index(number), original.shape[:2]) > 0
        outside = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
        assert np.array_equal(image[outside], original[outside])

    marks = watermark.Decoder()  # the host writes these frames: the mark is their provenance
    for number in COMPARED:
        marks.add(_rendered(out, number, 1, WIDTH, HEIGHT)[..., :3])
    assert marks.reading().found
    # At half scale: the same analysis, the dub resized, the host's half-size pixels kept outside the mask.
    half = _rendered(out, 1005, 0.5, WIDTH // 2, HEIGHT // 2)
    plate_half = cv2.resize(source[1005], (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
    changed = np.any(half != plate_half, axis=2)
    mask = cv2.resize(face.mask(track.index(1005), (HEIGHT, WIDTH)), (WIDTH // 2, HEIGHT // 2)) > 0
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert changed.any() and not changed[~near].any() and np.isfinite(half).all()


def _to_8bit(rgba: np.ndarray) -> np.ndarray:
    """The test host's 8-bit pixels: its rounding of the float plate."""
    return np.floor(np.clip(rgba, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def test_general_context_8_bit_with_an_alpha_only_mask_equals_lipsync_dub(built, float_plate, dub_audio, tiny_model,
                                                                           tmp_path):
    _, _, folder, source = float_plate
    box = (150, 170, 215, 215)  # x1, y1, x2, y2 top-down: around the mouth of the clip's speaker
    alpha = np.zeros((HEIGHT, WIDTH), np.float32)
    alpha[box[1]:box[3], box[0]:box[2]] = 1
    masks = tmp_path / "mask"
    masks.mkdir()
    for number in range(FIRST, LAST + 1):
        alpha[::-1].tofile(masks / f"{number}.raw")

    # `lipsync dub` of the same 8-bit frames (a PNG sequence) with the same mask painted in its sidecar, replacing
    # the automatic one.
    shot_folder = tmp_path / "shot8"
    shot_folder.mkdir()
    pattern = shot_folder / "plate.####.png"
    with open_writer(pattern, fps=25, width=WIDTH, height=HEIGHT) as out:
        for number in range(FIRST, LAST + 1):
            out.write(_to_8bit(source[number]), number)
    with open_writer(shot_folder / "mask.####.exr", fps=25, width=WIDTH, height=HEIGHT, pixel_type="float") as out:
        for number in range(FIRST, LAST + 1):
            out.write(np.repeat(alpha[..., None], 4, axis=2), number)
    shot = Shot.for_plate(pattern)
    shot.painted = [PaintedMask("mask.####.exr", (FIRST, LAST), "replace")]
    shot.save()
    rendered = tmp_path / "dub" / "out.####.png"
    assert cli_main(["dub", str(pattern), str(dub_audio), "-o", str(rendered), "--frames", "1006-1007",
                     "--model", str(tiny_model), "--device", "cpu", "--batch", "4"]) == 0

    out = tmp_path / "out"
    out.mkdir()
    device = GENERATE.param("device").choices.index("cpu")
    # First without the dub audio: the render fails with the core's own message; with it set, the next render
    # does not read the shot again, nor does one after the host purged the node's caches (the worker stopped).
    lines = _host(["--context", "general", "--depth", "byte", "--out", out, "--range", FIRST, LAST,
                   "--source", 1, WIDTH, HEIGHT, folder / "full", "--mask", 1, WIDTH, HEIGHT, masks,
                   "--param", f"model={tiny_model}", "--param", "batch=4", "--param", f"device={device}",
                   "render:1006", f"set:audio={dub_audio}", "render:1006", "purge", "render:1007"], tmp_path)
    errors = [line for line in lines if line.startswith("message OfxMessageError")]
    assert len(errors) == 1 and "no dub audio given" in errors[0]
    assert [(r[0], r[1], r[3]) for r in _renders(lines)] == [
        ("failed", 1006, list(range(FIRST, LAST + 1))), ("rendered", 1006, [1006]), ("rendered", 1007, [1007])]
    assert "needed 1006 Mask 1001 1012" in lines and "violations 0" in lines
    assert sum(line.startswith("fetch Mask") for line in lines) == LAST - FIRST + 1
    for number in (1006, 1007):
        image = np.fromfile(out / f"{number}@1.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[::-1]
        assert np.array_equal(image[..., :3], read_image(rendered.parent / f"out.{number}.png")[..., :3])
        changed = np.any(image != _to_8bit(source[number]), axis=2)
        assert changed.any() and not changed[alpha == 0].any()
