"""Audio offsets as users write them ('3f', '0.12s'). Standard library only: host adapters (Nuke,
Resolve) place the dub with it inside the host's own Python, where torch and the media stack are not;
valid Python 3.6, the oldest Resolve documents."""

import math
import re

from ..errors import LipSyncError


def offset_seconds(value, fps: float) -> float:
    """An audio offset (str or number) in seconds from '3f' (frames at the plate's rate), '0.12s' or a plain number of seconds."""
    if isinstance(value, (int, float)):
        if not math.isfinite(value):  # a JSON shot list or a host can hand over NaN
            raise LipSyncError(f"audio offset {value}: must be a finite number of seconds")
        return float(value)
    match = re.fullmatch(r"\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(f|s)?\s*", str(value))
    if not match:
        raise LipSyncError(f"audio offset {value!r}: write frames as '3f' or seconds as '0.12s'")
    number, unit = float(match.group(1)), match.group(2)
    return number / fps if unit == "f" else number
