"""Single image files: read and write EXR (OpenEXR 3.x bindings) and PNG/TIFF/JPEG (OpenCV).

Images are HxWx3 (RGB) or HxWx4 (RGBA) numpy arrays in the dtype stored in the file: EXR stays
half/float (linear light), PNG stays uint8/uint16.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from ..errors import MediaError
from .destination import write_failed
from .inputs import require_file

# Header attributes that describe the pixel layout of the file being written, not the shot:
# never copied from a source header.
_LAYOUT_ATTRIBUTES = {"channels", "dataWindow", "displayWindow", "type", "tiles", "chunkCount", "compression"}
_EXR_COMPRESSION = {
    "none": OpenEXR.NO_COMPRESSION,
    "zip": OpenEXR.ZIP_COMPRESSION,
    "zips": OpenEXR.ZIPS_COMPRESSION,
    "piz": OpenEXR.PIZ_COMPRESSION,
    "dwaa": OpenEXR.DWAA_COMPRESSION,
}


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if path.suffix.lower() == ".exr":
        return _read_exr(path)[0]  # checks the file as it opens it
    require_file(path)
    data = np.fromfile(path, dtype=np.uint8)  # imdecode, unlike imread, accepts any path on any OS
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise MediaError(f"{path}: cannot be read as an image (unreadable, truncated or not an image)")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _with_text(png: bytes, text: dict[str, str]) -> bytes:
    """`png` with a tEXt chunk per entry right after IHDR (OpenCV writes none; readers look for them early)."""
    end_of_header = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, 13 bytes, CRC
    chunks = b""
    for keyword, value in text.items():
        body = b"tEXt" + keyword.encode("latin-1") + b"\0" + value.encode("latin-1")
        chunks += struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:end_of_header] + chunks + png[end_of_header:]


def read_png_text(path: str | Path) -> dict[str, str]:
    """The tEXt chunks of a PNG file."""
    data, text, at = Path(path).read_bytes(), {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"tEXt":
            keyword, _, value = data[at + 8:at + 8 + length].partition(b"\0")
            text[keyword.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        at += 12 + length
    return text


def read_exr_header(path: str | Path, whole: bool = False) -> dict:
    """The EXR header as a dict (attribute name -> value), e.g. to carry it over to a written result. Only the
    header is read (a render carries each plate frame's header into its result), unless `whole`: then the pixels
    too, so that a damaged frame is an error (signing a sequence vouches for its frames)."""
    if whole:
        return _read_exr(Path(path))[1]
    with _open_exr(Path(path), header_only=True) as exr:
        return dict(exr.header())  # the bindings empty their own dict when the file closes


def _read_exr(path: Path) -> tuple[np.ndarray, dict]:
    with _open_exr(path) as exr:
        try:
            # Opening warns of damaged pixel data and goes on: it fails here, as a file without parts.
            header = dict(exr.header())  # the bindings empty their own dict when the file closes
            channels = {name: channel.pixels for name, channel in exr.channels().items()}
        except (RuntimeError, ValueError, OSError) as error:
            raise _unreadable(path, error) from error
    for group in ("RGBA", "RGB"):
        if group in channels:
            image = channels[group]
            break
    else:
        if all(c in channels for c in "RGB"):  # channels of mixed precision are not grouped by the bindings
            names = "RGBA" if "A" in channels else "RGB"
            dtype = np.result_type(*(channels[c] for c in names))
            image = np.stack([channels[c].astype(dtype) for c in names], axis=2)
        elif "Y" in channels:
            image = np.repeat(channels["Y"][:, :, None], 3, axis=2)
        else:
            raise MediaError(f"{path}: has no RGB or Y channels (it holds {', '.join(sorted(channels))})")
    return _to_display_window(image, header), header


def _open_exr(path: Path, header_only: bool = False) -> OpenEXR.File:
    require_file(path)
    try:
        return OpenEXR.File(str(path), header_only=header_only)
    except (RuntimeError, ValueError, OSError) as error:
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: Exception) -> MediaError:
    return MediaError(f"{path}: cannot be read as OpenEXR (unreadable or truncated: {error})")


def _to_display_window(image: np.ndarray, header: dict) -> np.ndarray:
    """Place the data window inside the display window: frames of a plate then share one size.
    Pixels outside the data window are zero; overscan beyond the display window is cut."""
    data_min, data_max = (np.asarray(v) for v in header["dataWindow"])
    show_min, show_max = (np.asarray(v) for v in header.get("displayWindow", header["dataWindow"]))
    if np.array_equal(data_min, show_min) and np.array_equal(data_max, show_max):
        return image
    width, height = (show_max - show_min + 1).tolist()
    result = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
    x0, y0 = (data_min - show_min).tolist()
    src_x0, src_y0 = max(0, -x0), max(0, -y0)
    dst_x0, dst_y0 = max(0, x0), max(0, y0)
    w = min(image.shape[1] - src_x0, width - dst_x0)
    h = min(image.shape[0] - src_y0, height - dst_y0)
    if w > 0 and h > 0:
        result[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = image[src_y0 : src_y0 + h, src_x0 : src_x0 + w]
    return result


def write_exr(
    path: str | Path,
    image: np.ndarray,
    layers: dict[str, np.ndarray] | None = None,
    header: dict | None = None,
    compression: str = "zip",
) -> None:
    """Write RGB/RGBA (float16 or float32) plus extra named single-channel layers (e.g. `lipsync.mask`).

    header: attributes to carry over (e.g. from `read_exr_header` of the source plate); the pixel
    layout attributes are always those of `image`.
    """
    if image.dtype not in (np.float16, np.float32) or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise MediaError(f"{path}: EXR needs an HxWx3 or HxWx4 float16/float32 image, got {image.dtype} {image.shape}")
    out_header = {k: v for k, v in (header or {}).items() if k not in _LAYOUT_ATTRIBUTES}
    out_header["compression"] = _EXR_COMPRESSION[compression]
    out_header["type"] = OpenEXR.scanlineimage
    # The bindings read the buffer as if it were C-contiguous, whatever its strides: copy views.
    channels = {"RGBA" if image.shape[2] == 4 else "RGB": np.ascontiguousarray(image)}
    for name, layer in (layers or {}).items():
        if layer.shape != image.shape[:2]:
            raise MediaError(f"{path}: layer {name} is {layer.shape}, the image is {image.shape[:2]}")
        channels[name] = np.ascontiguousarray(layer)
    try:
        with OpenEXR.File(out_header, channels) as exr:
            exr.write(str(path))
    except (RuntimeError, ValueError, OSError, TypeError) as error:
        raise MediaError(f"{path}: cannot write OpenEXR ({error})") from error


def write_png(path: str | Path, image: np.ndarray, text: dict[str, str] | None = None) -> None:
    """Write RGB/RGBA uint8 or uint16 losslessly, with `text` as tEXt chunks (Latin-1 keyword -> value).
    PNG has no float: convert first (see colour.py)."""
    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise MediaError(f"{path}: PNG needs an HxWx3 or HxWx4 uint8/uint16 image, got {image.dtype} {image.shape}")
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, code))
    if not ok:
        raise MediaError(f"{path}: PNG encoding failed")
    data = _with_text(data.tobytes(), text) if text else data
    try:
        # Not ndarray.tofile: a short write there loses the reason ("N requested and M written").
        with open(path, "wb") as file:
            file.write(data)
    except OSError as error:
        raise write_failed(path, error) from error
