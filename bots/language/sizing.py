"""Width × height from an aspect ratio and a model's native size.

The rule: both sides multiples of 64, and width × height within 10% of native_px². Among every such pair the one
whose ratio is closest to the requested one wins, measured as |log(w/h) − log(W/H)| (so 2:1 and 1:2 err alike);
ties go to the pixel count closest to native, then to the wider image. SDXL (1024) 16:9 → 1344×768,
SD1.5 (512) 16:9 → 704×384, the tiny 256 px models 16:9 → 320×192. A square is always exactly native × native.
"""

from __future__ import annotations

import math
from functools import lru_cache

STEP = 64
TOLERANCE = 0.10


@lru_cache(maxsize=1024)
def dimensions(native_px: int, ratio_w: int, ratio_h: int) -> tuple[int, int]:
    """The (width, height) for ``ratio_w:ratio_h`` on a model trained at ``native_px`` × ``native_px``."""
    target = native_px * native_px
    low, high = target * (1 - TOLERANCE), target * (1 + TOLERANCE)
    wanted = math.log(ratio_w / ratio_h)
    best: tuple[float, float, int, int, int] | None = None
    width = STEP
    while width * STEP <= high:
        first = max(1, math.ceil(low / width / STEP))
        last = math.floor(high / width / STEP)
        for units in range(first, last + 1):
            height = units * STEP
            key = (abs(math.log(width / height) - wanted), abs(width * height - target), -width, width, height)
            if best is None or key < best:
                best = key
        width += STEP
    if best is None:  # only when native_px itself is not a multiple of 64; the registry refuses that
        return native_px, native_px
    return best[3], best[4]
