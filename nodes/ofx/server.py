"""The worker half of the native OpenFX bundle: the process `LipSync.ofx` starts for each node, in the
core's Python, so that nothing of Python (let alone torch) loads into the host.

The plug-in starts it the way `lipsync_core.dub.worker` starts its worker: `$LIPSYNC_PYTHON` (else the
repository's `.venv/bin/python`) `-I -u -c BOOT REPO SCRATCH`, every PYTHON* variable removed, the working
folder the node's scratch folder. One JSON object a line each way on its stdin/stdout (a socket); the
log is its stderr, `SCRATCH/worker.log`.

Requests, each answered by one reply line (`{"error": message}` when it fails):

- `{"op": "prepare", "snapshot": K, "first": A, "last": B, "width": W, "height": H, "fps": F, "bits": 8, 16
  or 32, "premultiplied": bool, "mask": bool, "values": {param: value}, "keys": {param: [value at A, ..., at
  B]}}`: the plate is `SCRATCH/snapshotK/source.<n>.raw` for n in A..B (float32 RGBA, W x H, rows bottom-up
  as OFX holds them; 8 and 16 bits as 0-1), and with "mask" the Mask clip's alpha `mask.<n>.raw` (float32,
  one channel). The first prepare of a snapshot turns it into a plate the way `lipsync dub` reads one of
  the host's depth: float EXR (scene-linear) for 32 bits, 8- or 16-bit PNG (display-referred) otherwise,
  removing each raw file once converted, and tracks the face (the analysis, cached beside it); a later
  one with other values reuses both. Values follow `params.py`'s host conventions. Progress comes first
  as `{"stage", "done", "total"}` lines; the reply is `{"ready": true, "skip": [frames passed through
  untouched], "notes": [...]}`.
- `{"op": "render", "frame": N, "width": W, "height": H}`: frame N dubbed, written to
  `SCRATCH/render.raw` as float32 R, G, B, A, mask per pixel at W x H (the render scale's size), rows
  bottom-up, 8 and 16 bits as 0-1, premultiplied when the plate was; reply `{"rendered": N}`. The plug-in
  keeps the host's own pixels where the mask is 0.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from lipsync_core.errors import LipSyncError
from lipsync_core.provenance import watermark
from lipsync_core.provenance.facts import file_sha256
from lipsync_core.shot import SIDECAR_SUFFIX, PaintedMask, Shot

from .params import core_values

RESULT = "render.raw"
INTEGER_TYPES = {8: np.uint8, 16: np.uint16}  # the host's byte and short pixels


def main(argv: list[str]) -> int:
    """`python -I -u -c BOOT REPO SCRATCH`: answer the plug-in's requests until it closes the socket."""
    os.chdir(argv[0])  # the node's folder, not the host's: a relative path the core writes stays in it
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # what libraries print goes to the log, never into the replies
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        channel.write(json.dumps(message, ensure_ascii=False) + "\n")

    worker = Worker(Path(argv[0]), send)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = worker.handle(json.loads(line))
        except LipSyncError as error:
            reply = {"error": str(error)}
        except Exception as error:  # a bug: the host shows one line, the log has the traceback
            traceback.print_exc()
            reply = {"error": f"{type(error).__name__}: {error} (see {worker.folder / 'worker.log'})"}
        send(reply)
    return 0


class Worker:
    """One node's renderer, made again only when the plate snapshot or the values change."""

    def __init__(self, folder: Path, send):
        self.folder = folder
        self.send = send
        self.renderer = None
        self.prepared: str | None = None  # the prepare request the renderer was made for
        self.premultiplied = False
        self.cell: dict = {}  # the frames of the cell rendered last: a host renders neighbours one by one

    def handle(self, request: dict) -> dict:
        if request.get("op") == "prepare":
            return self.prepare(request)
        if request.get("op") == "render":
            return self.render(request)
        raise LipSyncError(f"unknown request {request.get('op')!r}")

    def prepare(self, request: dict) -> dict:
        from lipsync_core.dub.pipeline import Renderer

        snapshot = self.folder / f"snapshot{int(request['snapshot'])}"
        plate = snapshot / ("source.####.exr" if request["bits"] == 32 else "source.####.png")
        first, last = int(request["first"]), int(request["last"])
        key = json.dumps(request, sort_keys=True)
        if key != self.prepared:
            self.renderer, self.prepared, self.cell = None, None, {}
            if not (snapshot / "plate.complete").exists():
                self._plate(snapshot, plate, request)
            values, animated = core_values(request["values"], request["keys"], first)
            self.renderer = Renderer(
                plate, values["audio"], shot=self._shot(plate, values["shot"], first, last, request["mask"]),
                face=values["face"], audio_offset=values["audio_offset"] or 0.0, model=values["model"],
                device=values["device"], batch=values["batch"], mask=animated, mouth=values["mouth"],
                motion_model=values["motion_model"],
                motion={"gain": values["articulation"]} if values["articulation"] is not None else None,
                progress=lambda stage, done, total: self.send({"stage": stage, "done": done, "total": total}),
            )
            self.prepared, self.premultiplied = key, bool(request["premultiplied"])
            self.mark = watermark.payload(file_sha256(self.renderer.mouth_model))
        renderer = self.renderer
        skip = [n for n in range(first, last + 1)
                if not renderer.first <= n <= renderer.last or renderer.skip_reason(n) is not None]
        return {"ready": True, "skip": skip, "notes": renderer.notes}

    def render(self, request: dict) -> dict:
        import cv2

        if self.renderer is None:
            raise LipSyncError("render before prepare")
        number = int(request["frame"])
        if number not in self.cell:
            first, last = self.renderer.cell(number)
            self.cell = {frame.number: frame for frame in self.renderer.frames(first, last)}
        frame = self.cell[number]
        # Marked as every frame `lipsync dub` writes (the host writes these, so the mark is their provenance), in
        # the plate's own values, before the plug-in's 0-1 floats are made from them.
        marked = watermark.embed(frame.image, frame.mask, self.mark) if frame.mask.any() else frame.image
        image, mask = marked.astype(np.float32), frame.mask.astype(np.float32)
        if frame.image.dtype.kind == "u":  # an 8- or 16-bit plate: 0-1 for the plug-in
            image /= np.iinfo(frame.image.dtype).max
        size = (int(request["width"]), int(request["height"]))
        if (image.shape[1], image.shape[0]) != size:  # a proxy / render scale: the analysis is not made again
            shrink = size[0] < image.shape[1]
            method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            image, mask = cv2.resize(image, size, interpolation=method), cv2.resize(mask, size, interpolation=method)
        if self.premultiplied:
            image = image.copy()
            image[..., :3] *= image[..., 3:4]
        result = np.concatenate([image, mask[..., None]], axis=2)[::-1]  # OFX rows are bottom-up
        np.ascontiguousarray(result, np.float32).tofile(self.folder / RESULT)
        return {"rendered": number}

    def _plate(self, snapshot: Path, plate: Path, request: dict) -> None:
        """The snapshot's raw frames as the plate (RGB unpremultiplied, as the core composites: float32 EXR,
        or PNG at the host's 8 or 16 bits) and the Mask clip's alpha as float32 EXR (the core reads a painted
        mask's alpha)."""
        first, last = int(request["first"]), int(request["last"])
        width, height = int(request["width"]), int(request["height"])
        total = (last - first + 1) * (2 if request["mask"] else 1)

        def raw(name: str, number: int, channels: int) -> np.ndarray:
            path = snapshot / f"{name}.{number}.raw"
            pixels = np.fromfile(path, np.float32)
            if pixels.size != width * height * channels:
                raise LipSyncError(f"{path}: {pixels.size} values, not {width} x {height} x {channels}")
            path.unlink()  # the disk holds the shot about once, not raw and converted side by side
            return pixels.reshape(height, width, channels)[::-1]

        def source(number: int) -> np.ndarray:
            rgba = raw("source", number, 4).copy()
            if request["premultiplied"]:
                alpha = rgba[..., 3:4]
                rgba[..., :3] = np.where(alpha > 0, rgba[..., :3] / np.where(alpha > 0, alpha, 1), 0)
            self.send({"stage": "plate", "done": number - first + 1, "total": total})
            if request["bits"] == 32:
                return rgba
            dtype = INTEGER_TYPES[request["bits"]]
            top = np.float32(np.iinfo(dtype).max)
            # The plug-in's float is the host's integer / top: this rounding gives the host's integer back.
            return np.floor(np.clip(rgba, 0, 1) * top + np.float32(0.5)).astype(dtype)

        def matte(number: int) -> np.ndarray:
            self.send({"stage": "plate", "done": last - first + 1 + number - first + 1, "total": total})
            return np.repeat(raw("mask", number, 1), 4, axis=2)

        _write_sequence(plate, float(request["fps"]), first, last, source)
        if request["mask"]:
            _write_sequence(snapshot / "mask.####.exr", float(request["fps"]), first, last, matte)
        (snapshot / "plate.complete").touch()

    def _shot(self, plate: Path, sidecar: str | None, first: int, last: int, mask: bool) -> Path:
        """The shot the renderer reads: the given sidecar's choices (face, reference, bypass, range, motion controls,
        the actor's added footage) beside the snapshot, with the Mask clip as its painted mask when connected (it
        replaces the automatic one)."""
        given = Shot.load(sidecar) if sidecar else None
        shot = Shot(path=plate.with_name(plate.name + SIDECAR_SUFFIX), source=plate.name,
                    frames=given.frames if given else None, face=given.face if given else 0,
                    reference=given.reference if given else None, bypass=list(given.bypass) if given else [],
                    motion=dict(given.motion) if given else {},
                    # Absolute: the snapshot's folder is not the sidecar's.
                    appearance=[str(p.resolve()) for p in given.appearance_paths] if given else [])
        if mask:
            shot.painted = [PaintedMask("mask.####.exr", (first, last), "replace")]
        return shot.save()


def _write_sequence(pattern: Path, fps: float, first: int, last: int, image) -> None:
    """Frames first..last of `image(number)` as an EXR (float32) or PNG (the image's 8 or 16 bits) sequence."""
    from lipsync_core.media.writers import open_writer

    picture = image(first)
    options = {"pixel_type": "float"} if pattern.suffix == ".exr" else {}
    with open_writer(pattern, fps=fps, width=picture.shape[1], height=picture.shape[0], **options) as out:
        for number in range(first, last + 1):
            out.write(picture if number == first else image(number), number)
