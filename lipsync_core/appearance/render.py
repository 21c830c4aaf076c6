"""The footage path's renderer at the plate: StyleLipSync (a `footage` config) sees each frame's aligned crop with
the lower face blanked, the shot's reference, the audio codes and the warped frame of the actor (footage.Warped) in
the same crop, and draws the lower face and its confidence in the warped frame (`models.stylelipsync.fuse`).

At the plate's resolution the warped frame is kept at its own full size and the drawing is scaled up: the picture
is confidence x warped + (1 - confidence) x (drawing + the warped frame's texture finer than a crop pixel). Where
the renderer trusts the real frame its texture is kept whole (a 400-px face keeps its lips, teeth and stubble);
where it does not (a mouth opened by stretching, a seam, an interior from another moment) the renderer repaints the
coarse picture at its crop's resolution and the fine texture stays.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..face import geometry
from ..face.tracker import to_uint8_rgb
from ..media.colour import blend, plate_values
from ..media.ocio import PlateSpace
from .footage import Warped


def renderer_view(image: np.ndarray, warped: Warped, M: np.ndarray, size: int,
                  space: PlateSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The warped frame in the aligned crop (plate -> crop matrix M): its 8-bit display RGB (S, S, 3), the crops the
    renderer was trained on, and where it holds pixels (S, S) float32."""
    box = warped.box
    # The plate where the warped frame holds nothing: blank there in the renderer's input anyway (`footage_input`).
    pixels = blend(image[box], warped.pixels, warped.covered)
    matrix = geometry.from_corner(M, warped.x0, warped.y0)
    return (geometry.warp_to_crop(to_uint8_rgb(pixels, space), matrix, size),
            np.clip(geometry.warp_to_crop(warped.covered, matrix, size), 0.0, 1.0))


def at_plate(image: np.ndarray, warped: Warped, drawn: np.ndarray, trust: np.ndarray, M: np.ndarray, box_mask: np.ndarray,
             space: PlateSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The renderer's picture in the plate: `drawn` (S, S, 3) display RGB and `trust` (S, S) the renderer's
    confidence in the warped frame, both in the crop of plate -> crop matrix M, mixed with the warped frame at its
    full size and blended in through `box_mask` (the plate's feathered mask over the warped frame's box) where the
    warped frame lies. Returns the image and the (plate-sized) mask actually used."""
    box = warped.box
    height, width = warped.covered.shape
    matrix = geometry.from_corner(M, warped.x0, warped.y0)
    painted = plate_values(geometry.warp_from_crop(drawn, matrix, (height, width)), image, space)
    alpha = (geometry.warp_from_crop(trust.astype(np.float32), matrix, (height, width)) * warped.covered)[..., None]
    # Only where the warped frame lies, feathered inside its outline as on the warped path: past it the renderer has
    # no real frame to keep and would paint the neck or the background in its own soft colours, a visible patch.
    # Where the crop ends nothing was drawn: the plate stays there.
    inside = geometry.warp_from_crop(np.ones(trust.shape, np.float32), matrix, (height, width))
    used = np.zeros(image.shape[:2], np.float32)
    used[box] = box_mask * warped.covered * inside
    result = image.copy()
    # The renderer paints at its crop's resolution: where it paints, the warped frame's texture finer than a crop pixel
    # stays (its low band is what the renderer replaces).
    sigma = 1.0 / geometry.scale_of(M)
    fine = warped.pixels - cv2.GaussianBlur(warped.pixels, (0, 0), sigma)
    result[box] = blend(image[box], alpha * warped.pixels + (1 - alpha) * (painted + fine), used[box])
    return result, used
