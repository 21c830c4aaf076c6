"""`lipsync dub --colourspace NAME --ocio CONFIG`: a float plate in another colourspace than scene-linear Rec.709,
converted with OpenColorIO for the tracker and the model, and only the mouth converted back. On a real clip made
into an ACEScg EXR plate with the small config tests/ocio_config.py writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from dub_fixtures import CLIP, dub_audio, tiny_model  # noqa: F401 (pytest fixtures)
from lipsync_core.cli import main as cli_main
from lipsync_core.dub.outputs import MASK_LAYER
from lipsync_core.dub.pipeline import dub
from lipsync_core.media.colour import srgb_decode
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_image
from lipsync_core.media.ocio import PlateSpace
from lipsync_core.media.writers import open_writer
from ocio_config import AP1_TO_REC709, SPACES, write_config

pytest.importorskip("PyOpenColorIO")

FIRST, LAST = 1001, 1008


@pytest.fixture(scope="module")
def plates(shared_data, tmp_path_factory):
    """(config, the clip as an ACEScg EXR sequence, the same pre-converted by OpenColorIO to its sRGB display as a
    16-bit PNG sequence), each in a folder of its own."""
    root = tmp_path_factory.mktemp("ocio")
    config = write_config(root / "config.ocio")
    acescg = root / "acescg" / "plate.####.exr"
    display = root / "display" / "plate.####.png"
    to_ap1 = np.linalg.inv(np.array(AP1_TO_REC709, np.float32)).astype(np.float32)
    space = PlateSpace("ACEScg", config)
    with open_plate(shared_data / CLIP, frames=(20, 20 + LAST - FIRST)) as clip:
        info = clip.info
        with open_writer(acescg, fps=info.fps, width=info.width, height=info.height, inputs=[]) as exr, \
                open_writer(display, fps=info.fps, width=info.width, height=info.height, inputs=[]) as png:
            for number, frame in enumerate(clip, FIRST):
                ap1 = (srgb_decode(frame.image / np.float32(255)) @ to_ap1.T).astype(np.float32)
                exr.write(ap1, number)
                png.write(np.round(space.to_display(ap1) * 65535).astype(np.uint16), number)
    return config, acescg, display


def _mask(path: Path) -> np.ndarray:
    with OpenEXR.File(str(path)) as exr:
        return exr.channels()[MASK_LAYER].pixels.astype(np.float32)


def test_an_acescg_plate_gets_the_mouth_of_its_srgb_conversion_and_keeps_every_other_pixel(
    plates, dub_audio, tiny_model, tmp_path
):
    config, acescg, display = plates
    options = dict(model=tiny_model, mouth="generator", device="cpu", batch=4)
    dub(acescg, dub_audio, tmp_path / "ocio" / "dub.####.exr", colourspace="ACEScg", ocio=config, **options)
    dub(display, dub_audio, tmp_path / "display" / "dub.####.png", **options)
    # Read as if it were linear Rec.709: the face track cached by the first render, made on the converted frames, is
    # not taken for this one.
    plain_report = dub(acescg, dub_audio, tmp_path / "plain" / "dub.####.exr", **options)
    assert any("plate read in another colourspace): tracked again" in note for note in plain_report.notes), plain_report.notes

    space = PlateSpace("ACEScg", config)
    converted, plain = [], []
    for number in range(FIRST, LAST + 1):
        source = read_image(acescg.parent / f"plate.{number}.exr")
        result = read_image(tmp_path / "ocio" / f"dub.{number}.exr")
        mask = _mask(tmp_path / "ocio" / f"dub.{number}.exr")
        # Outside the mask the EXR is the plate's own, bit for bit: nothing but the mouth went through OpenColorIO.
        assert np.array_equal(result[mask == 0], source[mask == 0]), number
        mouth = mask > 0.5
        assert mouth.sum() > 500, number  # a face was found and dubbed
        wanted = read_image(tmp_path / "display" / f"dub.{number}.png")[mouth] / 65535.0
        converted.append(np.abs(space.to_display(result)[mouth] - wanted).mean())
        plain_result = read_image(tmp_path / "plain" / f"dub.{number}.exr")
        plain.append(np.abs(space.to_display(plain_result)[mouth] - wanted).mean())
    # The same mouth as the plate converted to sRGB first (to within what the 8-bit rounding of the two plates for
    # the tracker moves), and far closer than when the ACEScg plate is taken for linear Rec.709.
    assert max(converted) < 0.015, converted
    assert all(c * 2 < p for c, p in zip(converted, plain)) and np.mean(converted) * 3 < np.mean(plain), (converted, plain)


def test_an_unknown_colourspace_is_one_line_naming_the_configs_spaces(plates, dub_audio, tmp_path, capsys):
    config, acescg, display = plates
    out = tmp_path / "out" / "dub.####.exr"
    assert cli_main(["dub", str(acescg), str(dub_audio), "-o", str(out), "--colourspace", "ACES - ACEScg",
                     "--ocio", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert "'ACES - ACEScg' is not in" in error and all(name in error for name in SPACES) and "\n" not in error
    assert not (tmp_path / "out").exists()
    # A config built into OpenColorIO is named by its URI, which reaches OpenColorIO as given.
    assert cli_main(["dub", str(acescg), str(dub_audio), "-o", str(out), "--colourspace", "Scene Linear 709",
                     "--ocio", "ocio://cg-config-latest"]) == 2
    assert "'Scene Linear 709' is not in ocio://cg-config-latest; its colourspaces: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # A display-encoded (integer) plate has no scene colourspace to convert: refused, not silently converted.
    assert cli_main(["dub", str(display), str(dub_audio), "-o", str(out), "--colourspace", "ACEScg",
                     "--ocio", str(config)]) == 2
    assert "converts float (EXR) plates" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_farm_job_gives_every_task_the_colourspace_and_the_config_as_the_farm_finds_it(
    plates, dub_audio, tmp_path, monkeypatch
):
    config, acescg, _ = plates
    monkeypatch.chdir(config.parent)
    monkeypatch.setenv("OCIO", config.name)  # relative: no farm worker starts in this folder
    assert cli_main(["farm", "job", str(acescg), str(dub_audio), str(tmp_path / "dub.mp4"), "-o", str(tmp_path / "job"),
                     "--colourspace", "ACEScg", "--lipsync", "lipsync"]) == 0
    template = json.loads((tmp_path / "job" / "template.json").read_text())
    commands = [json.dumps(step) for step in template["steps"]]
    assert len(commands) == 3  # analyze, render, assemble: each reads the plate in ACEScg, each finds the cached track
    assert all(f'"--colourspace", "ACEScg", "--ocio", "{config}"' in command for command in commands), commands
