"""A float plate in a named OpenColorIO colourspace (`lipsync dub --colourspace NAME --ocio CONFIG`).

Without a colourspace, float plates are taken as scene-linear Rec.709 and sRGB-encoded for the face tracker and
the model (colour.py). With one, OpenColorIO converts them instead: from the plate's space to the config's
default display and view (what the compositor's monitor shows: for an ACES config its sRGB output transform,
for a plain config the sRGB curve), and a generated mouth from that display image back into the plate's space.
Only the mouth region is ever converted back; every other pixel is the plate's own, bit for bit.

OpenColorIO is the optional extra `ocio` (`pip install 'lipsync[ocio]'`), imported only when a colourspace is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MediaError

OCIO_ENV = "OCIO"


class PlateSpace:
    """How a float plate's pixels map to the display RGB [0, 1] the tracker and the model see, and back."""

    def __init__(self, name: str, config: str | Path | None = None):
        try:
            import PyOpenColorIO as ocio
        except ImportError:
            raise MediaError("--colourspace needs OpenColorIO: pip install 'lipsync[ocio]'") from None
        config = config or os.environ.get(OCIO_ENV)
        if not config:
            raise MediaError(f"--colourspace {name}: no OpenColorIO config: give --ocio CONFIG or set ${OCIO_ENV}")
        path = str(config)
        # ocio:// names a config built into OpenColorIO (ocio://default, ocio://studio-config-latest).
        if not path.startswith("ocio://") and not Path(path).is_file():
            raise MediaError(f"{path}: no such OpenColorIO config")
        try:
            loaded = ocio.Config.CreateFromFile(path)
        except ocio.Exception as error:
            raise MediaError(f"{path}: not a usable OpenColorIO config ({error})") from None
        space = loaded.getColorSpace(name)
        if space is None:
            names = ", ".join(loaded.getColorSpaceNames())
            raise MediaError(f"colourspace {name!r} is not in {path}; its colourspaces: {names}")
        # The config's own spelling: an alias or another case finds the space, and the record names it one way.
        self.name = space.getName()
        self.config = path
        display = loaded.getDefaultDisplay()
        view = loaded.getDefaultView(display)
        self.display = f"{display} / {view}"
        transform = ocio.DisplayViewTransform(src=self.name, display=display, view=view)
        try:
            self._to_display = loaded.getProcessor(transform).getDefaultCPUProcessor()
            self._from_display = loaded.getProcessor(transform, ocio.TRANSFORM_DIR_INVERSE).getDefaultCPUProcessor()
        except ocio.Exception as error:
            raise MediaError(f"{path}: cannot convert {self.name} to its display {self.display} and back ({error})") from None
        # What decides the converted pixels: the space and the config's content, wherever the file lies.
        self.key = f"{self.name} {loaded.getCacheID()}"

    def __str__(self) -> str:
        return f"{self.name} ({self.config}, display {self.display})"

    def to_display(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 float plate pixels -> display RGB clipped to [0, 1] (float32)."""
        out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
        self._to_display.applyRGB(out)
        return np.clip(out, 0.0, 1.0)

    def from_display(self, rgb01: np.ndarray) -> np.ndarray:
        """HxWx3 display RGB [0, 1] -> the plate's space (float32)."""
        out = np.ascontiguousarray(np.clip(rgb01, 0.0, 1.0), dtype=np.float32).copy()
        self._from_display.applyRGB(out)
        return out


def plate_space(name: str | None, config: str | Path | None = None) -> PlateSpace | None:
    """The plate's colourspace when one is named, else None (float plates taken as scene-linear Rec.709)."""
    if name is None:
        if config is not None:
            raise MediaError(f"--ocio {config}: give the plate's --colourspace too")
        return None
    return PlateSpace(name, config)


def require_float(space: PlateSpace | None, plate: str | Path, dtype) -> None:
    """A colourspace converts float plates; integer ones (video, PNG) are display-encoded already."""
    if space is not None and np.dtype(dtype).kind != "f":
        raise MediaError(f"{plate}: --colourspace {space.name} converts float (EXR) plates; this plate holds "
                         f"{np.dtype(dtype).name} pixels, which are read as display-encoded: leave --colourspace out")
