"""Plates <-> model input, and the final blend.

The model sees display-referred RGB in [0, 1] (like an 8-bit video frame). Integer plates (video,
PNG) are already display-encoded; float plates (EXR) are scene-linear and go through the sRGB
encoding (IEC 61966-2-1), clipped to [0, 1]. Highlights above 1 do not survive that trip, which is
why the result is made with `composite`: pixels outside the mask are copied from the plate, never
round-tripped, and the blend inside the mask happens in the plate's own light (linear for floats).
A float plate in another colourspace (an ACEScg or log EXR) names it with `--colourspace`: `space` below, an
ocio.PlateSpace, then converts its pixels with OpenColorIO instead of the sRGB encoding.
"""

from __future__ import annotations

import numpy as np

from .ocio import PlateSpace


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB OETF: linear [0, 1] -> encoded [0, 1] (float32)."""
    linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of `srgb_encode`: encoded [0, 1] -> linear [0, 1] (float32)."""
    encoded = np.clip(np.asarray(encoded, dtype=np.float32), 0.0, 1.0)
    return np.where(encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4)).astype(np.float32)


def _integer_scale(dtype) -> float | None:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None


def to_display(image: np.ndarray, space: PlateSpace | None = None) -> np.ndarray:
    """HxWx3 float32 display-encoded RGB in [0, 1] from any plate image (alpha is dropped); a float image in
    `space` when one is given."""
    rgb = image[..., :3]
    scale = _integer_scale(image.dtype)
    if scale is not None:
        return (rgb.astype(np.float32) / scale).astype(np.float32)
    return space.to_display(rgb) if space is not None else srgb_encode(rgb)


def from_display(rgb01: np.ndarray, like: np.ndarray, space: PlateSpace | None = None) -> np.ndarray:
    """Display RGB [0, 1] back to the dtype and encoding of `like` (its alpha, if any, is carried over); a
    float `like` is in `space` when one is given."""
    scale = _integer_scale(like.dtype)
    if scale is not None:
        rgb = np.round(np.clip(rgb01, 0.0, 1.0) * scale).astype(like.dtype)
    else:
        rgb = (space.from_display(rgb01) if space is not None else srgb_decode(rgb01)).astype(like.dtype)
    if like.shape[-1] == 4:
        rgb = np.concatenate([rgb, like[..., 3:]], axis=-1)
    return rgb


def composite(original: np.ndarray, generated_display: np.ndarray, mask: np.ndarray,
              space: PlateSpace | None = None) -> np.ndarray:
    """Blend the generated face into the plate inside `mask` (HxW, 0..1, feathered).

    Float plates blend in linear light (in `space`'s own values when one is given); integer plates in their own
    encoding. Where mask == 0 the result is the original array's values exactly; alpha is always the original's.
    """
    return blend(original, plate_values(generated_display, original, space), mask)


def plate_values(display: np.ndarray, like: np.ndarray, space: PlateSpace | None = None) -> np.ndarray:
    """Display RGB [0, 1] as float32 in the encoding and scale of the plate image `like` (0..255 for 8-bit, linear
    or `space`'s values for float): what `blend` takes."""
    scale = _integer_scale(like.dtype)
    if scale is not None:
        return np.clip(display, 0.0, 1.0).astype(np.float32) * scale
    return (space.from_display(display) if space is not None else srgb_decode(display)).astype(np.float32)


def blend(original: np.ndarray, replacement: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend `replacement` (HxWx3 float32 in the plate's own encoding and scale) into the plate inside `mask`;
    where mask == 0 the result is the original exactly, and alpha is always the original's."""
    weight = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)[..., None]
    rgb = original[..., :3].astype(np.float32)
    blended = rgb + (replacement[..., :3].astype(np.float32) - rgb) * weight
    scale = _integer_scale(original.dtype)
    if scale is not None:
        blended = np.clip(np.round(blended), 0, scale)
    result = original.copy()
    result[..., :3] = np.where(weight > 0, blended.astype(original.dtype), original[..., :3])
    return result
