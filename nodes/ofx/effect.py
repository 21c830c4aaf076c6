"""The LipSync dub as an OFX image effect: host parameters and images translated onto the core's
`Renderer`, nothing else.

How a host's clip becomes a plate: OFX hands images, not files, and the dub needs the whole shot
(the face track is smoothed over it, the model renders cells of frames). So the first render at a
render scale fetches every frame of `Source` once (temporal clip access), stores it losslessly as a
float32 EXR sequence in the instance's scratch folder, and renders from that with the same code
`lipsync dub` uses: frames come out as `lipsync dub` would make them from a plate with those pixels.

Host parameter conventions: OFX numbers cannot be empty, so -1 stands for "not set" in a number whose
schema default is None (face: the shot's choice; feather: automatic); an empty path is "not set".
The node's mask knobs are the shot's mask controls in a host (they replace the sidecar's); the Mask
clip, when connected, replaces the automatic mask on every frame (the sidecar's painted masks are
not used in a host).

The dubbed region carries the invisible watermark, as in every frame `lipsync dub` writes: the host writes the
effect's frames, so the mark is the only provenance they can carry (no signed credentials, no header facts).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from lipsync_core import __version__
from lipsync_core.ops.generate import GENERATE
from lipsync_core.provenance import watermark
from lipsync_core.shot import SIDECAR_SUFFIX, Keyframes, PaintedMask, Shot

from . import api

PLUGIN_ID = "org.lipsync.dub"
SOURCE, OUTPUT, MASK = "Source", "Output", "Mask"
INSTANCE_DATA = "OfxPropInstanceData"
UNSET = -1  # a number parameter left "not set" (see the module docstring)
FILE_TYPES = ("audio", "model", "shot", "path")
# The schema's inputs and parameters a host sets as parameters (the clips are OFX clips).
PARAMS = tuple(p for p in GENERATE.inputs + GENERATE.params if p.node and p.type not in ("clip", "mask"))


def main_entry(action: str, handle, in_args: dict, out_args: dict) -> int:
    """The plug-in's main entry point: one OFX action."""
    if action in (api.LOAD, api.UNLOAD, api.BEGIN_SEQUENCE_RENDER, api.END_SEQUENCE_RENDER):
        return api.STAT_OK  # renderers are made on first use and kept for the instance's life
    if action == api.DESCRIBE:
        return describe(handle)
    if action == api.DESCRIBE_IN_CONTEXT:
        return describe_in_context(handle, in_args[api.CONTEXT])
    if action == api.CREATE_INSTANCE:
        handle.props[INSTANCE_DATA] = Instance(handle)
        return api.STAT_OK
    if action == api.DESTROY_INSTANCE:
        handle.props.pop(INSTANCE_DATA).close()
        return api.STAT_OK
    instance: Instance = handle.props[INSTANCE_DATA]
    if action == api.GET_REGION_OF_DEFINITION:
        out_args[api.REGION_OF_DEFINITION] = handle.clip(SOURCE).region_of_definition(in_args[api.TIME])
        return api.STAT_OK
    if action == api.GET_FRAMES_NEEDED:
        out_args[api.FRAMES_NEEDED_PREFIX + SOURCE] = instance.frames_needed(in_args[api.TIME])
        return api.STAT_OK
    if action == api.IS_IDENTITY:
        if instance.passes_through(in_args[api.TIME], in_args[api.RENDER_SCALE]):
            out_args[api.NAME], out_args[api.TIME] = SOURCE, in_args[api.TIME]
            return api.STAT_OK
        return api.STAT_REPLY_DEFAULT
    if action == api.RENDER:
        instance.render(in_args[api.TIME], in_args[api.RENDER_SCALE])
        return api.STAT_OK
    return api.STAT_REPLY_DEFAULT


def describe(effect) -> int:
    effect.props.update({
        api.LABEL: "LipSync", api.GROUPING: "LipSync", "OfxPropVersionLabel": __version__,
        api.SUPPORTED_CONTEXTS: [api.CONTEXT_FILTER], api.SUPPORTED_PIXEL_DEPTHS: [api.BIT_DEPTH_FLOAT],
        # Whole frames only: the face tracker and the model see the whole picture.
        api.SUPPORTS_TILES: False, api.SUPPORTS_MULTI_RESOLUTION: False, api.TEMPORAL_CLIP_ACCESS: True,
        # One render per instance at a time: its renderers are not shared between threads.
        api.RENDER_THREAD_SAFETY: api.RENDER_INSTANCE_SAFE,
    })
    return api.STAT_OK


def describe_in_context(effect, context: str) -> int:
    if context != api.CONTEXT_FILTER:
        return api.STAT_FAILED
    effect.define_clip(SOURCE).update({api.SUPPORTED_COMPONENTS: [api.COMPONENT_RGBA], api.TEMPORAL_CLIP_ACCESS: True})
    effect.define_clip(OUTPUT).update({api.SUPPORTED_COMPONENTS: [api.COMPONENT_RGBA]})
    effect.define_clip(MASK).update({api.SUPPORTED_COMPONENTS: [api.COMPONENT_ALPHA, api.COMPONENT_RGBA],
                                     api.OPTIONAL: True, api.IS_MASK: True})
    for param in PARAMS:
        props = effect.define_param(_param_type(param), param.name)
        props.update({api.LABEL: param.name.replace("_", " ").capitalize(), api.PARAM_HINT: param.help,
                      api.PARAM_ANIMATES: param.animatable, api.PARAM_DEFAULT: _host_default(param)})
        if param.type in FILE_TYPES:
            props[api.PARAM_STRING_MODE] = api.STRING_IS_FILE_PATH
        elif param.type == "choice":
            props[api.PARAM_CHOICE_OPTION] = list(param.choices)
        elif param.type in ("int", "float"):
            low, high = param.range or (None, None)
            low = UNSET if param.default is None else low
            props.update({k: v for k, v in ((api.PARAM_MIN, low), (api.PARAM_MAX, high)) if v is not None})
    return api.STAT_OK


def _param_type(param) -> str:
    return {"int": api.PARAM_INTEGER, "float": api.PARAM_DOUBLE, "bool": api.PARAM_BOOLEAN,
            "choice": api.PARAM_CHOICE}.get(param.type, api.PARAM_STRING)


def _host_default(param):
    if param.type == "choice":
        return param.choices.index(param.default)
    if param.default is None:
        return UNSET if param.type in ("int", "float") else ""
    return param.default


def _core_value(param, value):
    """A host parameter's value as the core takes it."""
    if param.type == "choice":
        return param.choices[int(value)]
    if param.type in FILE_TYPES or param.type in ("str", "offset"):
        return value or None
    if param.default is None and value == UNSET:
        return None
    return value


class Instance:
    """One LipSync node in a host's graph: its scratch folder and a renderer per render scale."""

    def __init__(self, handle):
        self.handle = handle
        self.scratch = Path(tempfile.mkdtemp(prefix="lipsync-ofx-"))
        self._renderers: dict[tuple, object] = {}
        self._marks: dict[Path, np.ndarray] = {}  # the watermark's bits for each model that makes the mouth

    def close(self) -> None:
        self._renderers.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # ------------------------------------------------------------------------------------ actions

    def frames_needed(self, time: float) -> tuple[float, float]:
        """The temporal window of a frame: the cell of frames the model renders with it."""
        first, last = self.renderer((1.0, 1.0)).cell(int(time))
        return float(first), float(last)

    def passes_through(self, time: float, scale) -> bool:
        """Bypassed or faceless frames: the host shows Source itself."""
        return self.renderer(scale).skip_reason(int(time)) is not None

    def render(self, time: float, scale) -> None:
        number = int(time)
        source = self.handle.clip(SOURCE).get_image(time, scale)
        output = self.handle.clip(OUTPUT).get_image(time, scale)
        renderer = self.renderer(scale)
        dubbed = next(renderer.frames(number, number))
        rgba = source.pixels
        result = watermark.embed(dubbed.image, dubbed.mask, self._mark(renderer.mouth_model))[::-1]  # bottom-up rows
        if source.props.get(api.PREMULTIPLICATION) == api.PREMULTIPLIED:
            result = result.copy()
            result[..., :3] *= result[..., 3:4]
        # Outside the mask the host's own pixels, to the bit (no unpremultiply round trip).
        output.pixels[...] = np.where(dubbed.mask[::-1, :, None] > 0, result, rgba)

    # ------------------------------------------------------------------------------------ the core

    def _mark(self, model: Path) -> np.ndarray:
        from lipsync_core.provenance.facts import file_sha256  # media libraries: not at describe time

        if model not in self._marks:
            self._marks[model] = watermark.payload(file_sha256(model))
        return self._marks[model]

    def _values(self, time: float) -> dict:
        return {p.name: _core_value(p, self.handle.param(p.name).value_at(time)) for p in PARAMS if not p.animatable}

    def renderer(self, scale):
        """The core renderer for the current parameters at a render scale (made on first use)."""
        from lipsync_core.dub.pipeline import Renderer  # torch: not at describe time

        source = self.handle.clip(SOURCE)
        first, last = (int(t) for t in source.props[api.FRAME_RANGE])
        values = self._values(first)
        mask = {p.name: self._keyframes(p, first, last) for p in PARAMS if p.animatable}
        key = (tuple(scale), tuple(sorted(values.items())), repr(mask), self.handle.clip(MASK).props.get(api.CONNECTED))
        if key not in self._renderers:
            plate = self._plate(source, first, last, scale)
            self._renderers[key] = Renderer(
                plate, values["audio"], shot=self._shot(plate, values["shot"], first, last, scale),
                face=values["face"], audio_offset=values["audio_offset"], model=values["model"],
                device=values["device"], batch=values["batch"], mask=mask, mouth=values["mouth"],
                motion_model=values["motion_model"],
                motion={"gain": values["articulation"]} if values["articulation"] is not None else None,
            )
        return self._renderers[key]

    def _keyframes(self, param, first: int, last: int):
        """An animatable host parameter over the shot: a constant, or one key per frame."""
        values = [_core_value(param, self.handle.param(param.name).value_at(float(n))) for n in range(first, last + 1)]
        if all(v == values[0] for v in values):
            return values[0]
        return Keyframes([(n, v) for n, v in zip(range(first, last + 1), values)], "hold")

    def _folder(self, scale) -> Path:
        folder = self.scratch / f"scale_{scale[0]:g}x{scale[1]:g}"
        folder.mkdir(exist_ok=True)
        return folder

    def _plate(self, clip, first: int, last: int, scale) -> Path:
        """The Source clip as a float32 EXR sequence (RGB unpremultiplied, as the core composites)."""
        plate = self._folder(scale) / "source.####.exr"
        done = plate.with_name("source.complete")  # a sequence cut short by a failed fetch is made again
        if not done.exists():
            premultiplied = clip.props.get(api.PREMULTIPLICATION) == api.PREMULTIPLIED

            def image(number: int) -> np.ndarray:
                rgba = clip.get_image(float(number), scale).pixels[::-1].astype(np.float32)
                if premultiplied:
                    alpha = rgba[..., 3:4]
                    rgba[..., :3] = np.where(alpha > 0, rgba[..., :3] / np.where(alpha > 0, alpha, 1), 0)
                return rgba

            _write_sequence(plate, float(clip.props[api.FRAME_RATE]), first, last, image)
            done.touch()
        return plate

    def _shot(self, plate: Path, sidecar: str | None, first: int, last: int, scale) -> Path:
        """The shot the renderer reads: the given sidecar's choices (face, reference, bypass, range)
        beside the scratch plate, with the Mask clip as its painted mask when connected."""
        given = Shot.load(sidecar) if sidecar else None
        shot = Shot(path=plate.with_name(plate.name + SIDECAR_SUFFIX), source=plate.name,
                    frames=given.frames if given else None, face=given.face if given else 0,
                    reference=given.reference if given else None, bypass=list(given.bypass) if given else [])
        mask_clip = self.handle.clip(MASK)
        if mask_clip.props.get(api.CONNECTED):
            pattern = plate.with_name("mask.####.exr")

            def matte(number: int) -> np.ndarray:  # the core reads a painted mask's alpha
                alpha = mask_clip.get_image(float(number), scale).pixels[::-1, :, 3:4].astype(np.float32)
                return np.repeat(alpha, 4, axis=2)

            _write_sequence(pattern, 1.0, first, last, matte)
            shot.painted = [PaintedMask(pattern.name, (first, last), "replace")]
        return shot.save()


def _write_sequence(pattern: Path, fps: float, first: int, last: int, image) -> None:
    """Frames first..last of `image(number)` as a float32 EXR sequence."""
    from lipsync_core.media.writers import open_writer  # media libraries: not at describe time

    picture = image(first)
    with open_writer(pattern, fps=fps, width=picture.shape[1], height=picture.shape[0], pixel_type="float") as out:
        for number in range(first, last + 1):
            out.write(picture if number == first else image(number), number)
