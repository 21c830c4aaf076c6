"""Display images of a plate's frames for the viewer, decoded a few at a time and kept in a small cache."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from lipsync_core.face.tracker import to_uint8_rgb
from lipsync_core.media.frames import PlateInfo, open_plate


class FrameCache:
    """uint8 RGB display images by plate frame number. A miss decodes `chunk` frames from there on
    (scrubbing and playback mostly move forward); the least recently used are dropped past `budget`
    bytes."""

    def __init__(self, path: str | Path, info: PlateInfo, chunk: int = 8, budget: int = 512 << 20):
        self.path, self.info, self.chunk, self.budget = Path(path), info, chunk, budget
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0

    def image(self, number: int) -> np.ndarray:
        if number in self._images:
            self._images.move_to_end(number)
            return self._images[number]
        last = min(number + self.chunk - 1, self.info.last)
        with open_plate(self.path, frames=(number, last)) as plate:
            for frame in plate:
                self._keep(frame.number, np.ascontiguousarray(to_uint8_rgb(frame.image)))
        return self._images[number]

    def _keep(self, number: int, image: np.ndarray) -> None:
        if number in self._images:
            return
        self._images[number] = image
        self._bytes += image.nbytes
        while self._bytes > self.budget and len(self._images) > 1:
            _, dropped = self._images.popitem(last=False)
            self._bytes -= dropped.nbytes
