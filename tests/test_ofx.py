"""The OpenFX-style adapter driven by a host harness the way a real host drives a plug-in, on a real
clip: its output equals `lipsync dub`'s for the same frames."""

from __future__ import annotations

import hashlib

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
from lipsync_core.shot import Shot
from nodes.ofx import api
from nodes.ofx.effect import MASK, OUTPUT, PARAMS, SOURCE, main_entry

FIRST, LAST = 1001, 1012  # a 12-frame linear float plate made from the real clip
BYPASSED = 1004
RENDER_ORDER = [1007, BYPASSED, 1003, 1008, 1005]  # hosts render out of order (scrubbing, several threads)


class Image:
    def __init__(self, pixels: np.ndarray, premultiplication: str):
        self.pixels = pixels
        self.props = {api.PREMULTIPLICATION: premultiplication}


class Clip:
    """A host clip: RGBA float32 images, rows bottom-up as OFX hands them over."""

    def __init__(self, frames: dict[int, np.ndarray] | None, fps: float = 25.0):
        self.frames = frames or {}
        self.rendered: dict[int, np.ndarray] = {}
        self.props = {api.CONNECTED: frames is not None, api.FRAME_RATE: fps, api.PREMULTIPLICATION: api.PREMULTIPLIED,
                      api.FRAME_RANGE: (float(min(self.frames, default=0)), float(max(self.frames, default=0)))}

    def region_of_definition(self, time):
        height, width = next(iter(self.frames.values())).shape[:2]
        return (0.0, 0.0, float(width), float(height))

    def get_image(self, time, render_scale):
        assert tuple(render_scale) == (1.0, 1.0)
        if self.frames:
            return Image(self.frames[int(time)][::-1].copy(), self.props[api.PREMULTIPLICATION])
        # The output clip: the host's buffer the effect renders into, kept for the test to read.
        pixels = self.rendered[int(time)] = np.full_like(next(iter(self.source.frames.values())), np.nan)
        return Image(pixels, api.PREMULTIPLIED)


class Param:
    def __init__(self, value):
        self.value = value

    def value_at(self, time):
        return self.value


class Effect:
    """What the host hands the plug-in: a descriptor while describing, an instance afterwards."""

    def __init__(self):
        self.props, self.clip_props, self.param_props = {}, {}, {}
        self.clips, self.params = {}, {}

    def define_clip(self, name):
        return self.clip_props.setdefault(name, {})

    def define_param(self, param_type, name):
        return self.param_props.setdefault(name, {"type": param_type})

    def clip(self, name):
        return self.clips[name]

    def param(self, name):
        return self.params[name]


@pytest.fixture(scope="module")
def float_plate(plate, tmp_path_factory):
    """Linear float EXR frames 1001-1012 of the real clip, and a sidecar bypassing one frame. Float, not half: the
    host hands the effect float32 pixels, and `lipsync dub` computes (and writes) in the plate's own precision."""
    pattern = tmp_path_factory.mktemp("ofx_plate") / "plate.####.exr"
    with open_plate(plate, frames=(0, LAST - FIRST)) as source, \
            open_writer(pattern, fps=25, width=360, height=288, pixel_type="float") as out:
        for frame in source:
            out.write(srgb_decode(to_display(frame.image)), frame.number + FIRST)
    shot = Shot.for_plate(pattern)
    shot.bypass = [(BYPASSED, BYPASSED)]
    return pattern, shot.save()


def _action(action, handle=None, **in_args):
    out_args = {}
    status = main_entry(action, handle, in_args, out_args)
    return status, out_args


def test_describe_offers_the_schema_parameters_and_the_filter_clips():
    effect = Effect()
    assert _action(api.LOAD)[0] == api.STAT_OK
    assert _action(api.DESCRIBE, effect)[0] == api.STAT_OK
    assert effect.props[api.SUPPORTED_CONTEXTS] == [api.CONTEXT_FILTER]
    assert _action(api.DESCRIBE_IN_CONTEXT, effect, **{api.CONTEXT: api.CONTEXT_FILTER})[0] == api.STAT_OK

    assert set(effect.clip_props) == {SOURCE, OUTPUT, MASK}
    assert effect.clip_props[MASK][api.OPTIONAL] and effect.clip_props[MASK][api.IS_MASK]
    # Every input and parameter of the generate operation a host sets, and nothing else.
    schema = {p.name for p in GENERATE.inputs + GENERATE.params if p.node and p.type not in ("clip", "mask")}
    assert set(effect.param_props) == schema == {p.name for p in PARAMS}
    assert {"audio", "audio_offset", "grow"} <= schema
    for param in PARAMS:
        props = effect.param_props[param.name]
        assert props[api.PARAM_HINT] == param.help and props[api.PARAM_ANIMATES] == param.animatable
    assert effect.param_props["audio"][api.PARAM_STRING_MODE] == api.STRING_IS_FILE_PATH


def test_host_renders_out_of_order_equal_lipsync_dub(float_plate, dub_audio, tiny_model, tmp_path):
    pattern, _ = float_plate
    # What `lipsync dub` makes of these frames, watermark included: the effect marks its frames as the dub does.
    rendered = tmp_path / "dub" / "out.####.exr"
    first, last = min(RENDER_ORDER), max(RENDER_ORDER)
    assert cli_main(["dub", str(pattern), str(dub_audio), "-o", str(rendered), "--frames", f"{first}-{last}",
                     "--model", str(tiny_model), "--device", "cpu", "--batch", "4"]) == 0

    # The host: the plate as float RGBA (opaque, so premultiplied equals unpremultiplied), the sidecar as a parameter.
    source = {}
    with open_plate(pattern) as frames:
        for frame in frames:
            alpha = np.ones(frame.image.shape[:2] + (1,), np.float32)
            source[frame.number] = np.concatenate([frame.image.astype(np.float32), alpha], axis=2)
    effect = Effect()
    _action(api.LOAD)
    _action(api.DESCRIBE, effect)
    _action(api.DESCRIBE_IN_CONTEXT, effect, **{api.CONTEXT: api.CONTEXT_FILTER})
    effect.clips = {SOURCE: Clip(source), OUTPUT: Clip(None), MASK: Clip(None)}
    effect.clips[OUTPUT].source = effect.clips[SOURCE]
    values = {name: props[api.PARAM_DEFAULT] for name, props in effect.param_props.items()}
    values.update(audio=str(dub_audio), model=str(tiny_model), shot=str(float_plate[1]), batch=4,
                  device=GENERATE.param("device").choices.index("cpu"))
    effect.params = {name: Param(value) for name, value in values.items()}

    assert _action(api.CREATE_INSTANCE, effect)[0] == api.STAT_OK
    scale = {api.RENDER_SCALE: (1.0, 1.0)}
    assert _action(api.BEGIN_SEQUENCE_RENDER, effect, **{api.FRAME_RANGE: (first, last)}, **scale)[0] == api.STAT_OK
    identity = []
    for number in RENDER_ORDER:
        time = {api.TIME: float(number)}
        status, out = _action(api.GET_REGION_OF_DEFINITION, effect, **time, **scale)
        assert out[api.REGION_OF_DEFINITION] == (0.0, 0.0, 360.0, 288.0)
        status, out = _action(api.GET_FRAMES_NEEDED, effect, **time)
        window = out[api.FRAMES_NEEDED_PREFIX + SOURCE]
        assert window[0] <= number <= window[1] and window[1] - window[0] == 3  # its cell of --batch 4 frames
        status, out = _action(api.IS_IDENTITY, effect, **time, **scale)
        if status == api.STAT_OK:
            assert out == {api.NAME: SOURCE, api.TIME: float(number)}
            identity.append(number)
            continue
        assert _action(api.RENDER, effect, **time, **scale)[0] == api.STAT_OK
    assert _action(api.END_SEQUENCE_RENDER, effect, **{api.FRAME_RANGE: (first, last)}, **scale)[0] == api.STAT_OK
    scratch = effect.props["OfxPropInstanceData"].scratch
    assert _action(api.DESTROY_INSTANCE, effect)[0] == api.STAT_OK
    assert not scratch.exists()
    assert _action(api.UNLOAD)[0] == api.STAT_OK

    assert identity == [BYPASSED]
    outputs = effect.clips[OUTPUT].rendered
    track = Track.load(Shot.for_plate(pattern).track_path())  # the track `lipsync dub` cached beside the plate
    face = track.face(0)
    assert sorted(outputs) == sorted(n for n in RENDER_ORDER if n != BYPASSED)
    for number, pixels in outputs.items():
        image = pixels[::-1]  # OFX rows are bottom-up
        expected = read_image(rendered.parent / f"out.{number}.exr")
        original = source[number]
        # The same float computation as `lipsync dub`, watermark included.
        assert np.array_equal(image[..., :3], expected), f"frame {number} differs from lipsync dub"
        changed = np.any(image != original, axis=2)
        assert changed.any(), f"frame {number}: the face was not redrawn"
        assert np.array_equal(image[..., 3], original[..., 3])
        # Outside the face's mask (grown by a few pixels of interpolation) the host's own pixels, to the bit.
        mask = face.mask(track.index(number), original.shape[:2]) > 0
        outside = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
        assert np.array_equal(image[outside], original[outside])
    # The host writes these frames: the mark is what names the tool and the model in them.
    decoder = watermark.Decoder()
    for pixels in outputs.values():
        decoder.add(pixels[::-1])
    reading = decoder.reading()
    assert reading.found and hashlib.sha256(tiny_model.read_bytes()).hexdigest().startswith(reading.model_prefix)
