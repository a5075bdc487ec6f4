"""Canvas geometry for Zoom Out, Pan and Make Square, and the sizes for an aspect ratio.

Each returns the new canvas size, where the old image goes (and at what size), and the mask of the area to paint.
The canvas stays near the model's native pixel count (Midjourney: zoom out does not grow the image), so the old
image is scaled down when the canvas would otherwise grow past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from impasto.engine.errors import InvalidInput
from impasto.engine.spec import Dimensions, PanDirection

#: Pan grows the canvas by this fraction of the side it extends (Midjourney V7: 1:1 → pan → 3:2).
PAN_GROWTH = 0.5
#: A canvas may exceed the native pixel count by this factor before everything is scaled down to native.
NATIVE_SLACK = 1.25
BLEND_RATIOS: dict[Dimensions, tuple[int, int]] = {"portrait": (2, 3), "square": (1, 1), "landscape": (3, 2)}


def round64(x: float) -> int:
    return max(64, round(x / 64) * 64)


def size_for_aspect(native_px: int, ratio_w: int, ratio_h: int) -> tuple[int, int]:
    """Width × height with the given ratio, near ``native_px²`` pixels, multiples of 64."""
    area = native_px * native_px
    width = math.sqrt(area * ratio_w / ratio_h)
    return round64(width), round64(width * ratio_h / ratio_w)


@dataclass(frozen=True)
class Layout:
    canvas: tuple[int, int]
    box: tuple[int, int, int, int]  # where the old image sits: left, top, right, bottom (exclusive)

    def mask(self) -> Image.Image:
        """White where new pixels are painted, black over the old image."""
        mask = Image.new("L", self.canvas, 255)
        mask.paste(0, self.box)
        return mask

    def inner(self, image: Image.Image) -> Image.Image:
        """The old image at the size of its box."""
        left, top, right, bottom = self.box
        if image.size == (right - left, bottom - top):
            return image
        return image.resize((right - left, bottom - top), Image.Resampling.LANCZOS)

    def place(self, image: Image.Image) -> Image.Image:
        """The canvas with the old image in its box. Under the new area, the old image stretched to the canvas:
        the painter starts from plausible colours rather than grey."""
        canvas = image.resize(self.canvas, Image.Resampling.BILINEAR)
        canvas.paste(self.inner(image), self.box[:2])
        return canvas


def _fit(canvas_w: float, canvas_h: float, inner_w: float, inner_h: float, native_px: int) -> Layout:
    """Scale a canvas (and the old image inside it) down to native pixel count when it grew too much."""
    scale = 1.0
    if canvas_w * canvas_h > NATIVE_SLACK * native_px * native_px:
        scale = math.sqrt(native_px * native_px / (canvas_w * canvas_h))
    cw, ch = round64(canvas_w * scale), round64(canvas_h * scale)
    iw = min(cw, max(8, round(inner_w * cw / canvas_w)))
    ih = min(ch, max(8, round(inner_h * ch / canvas_h)))
    return Layout((cw, ch), (0, 0, iw, ih))


def zoom_layout(size: tuple[int, int], factor: float) -> Layout:
    """Zoom out by ``factor`` (1–2): the canvas keeps the image's size, the old image shrinks to 1/factor, centred."""
    if not 1.0 <= factor <= 2.0:
        raise InvalidInput(f"zoom factor must be between 1 and 2, not {factor:g}")
    w, h = round64(size[0]), round64(size[1])
    iw, ih = round(w / factor), round(h / factor)
    left, top = (w - iw) // 2, (h - ih) // 2
    return Layout((w, h), (left, top, left + iw, top + ih))


def pan_layout(size: tuple[int, int], direction: PanDirection, native_px: int) -> Layout:
    """Grow the canvas by half a side towards ``direction``; the old image keeps the opposite edge."""
    w, h = size
    horizontal = direction in ("left", "right")
    cw, ch = (w * (1 + PAN_GROWTH), h) if horizontal else (w, h * (1 + PAN_GROWTH))
    fitted = _fit(cw, ch, w, h, native_px)
    (cw2, ch2), (_, _, iw, ih) = fitted.canvas, fitted.box
    left = cw2 - iw if direction == "left" else 0
    top = ch2 - ih if direction == "up" else 0
    if horizontal:
        top = (ch2 - ih) // 2
    else:
        left = (cw2 - iw) // 2
    return Layout((cw2, ch2), (left, top, left + iw, top + ih))


def square_layout(size: tuple[int, int], native_px: int) -> Layout:
    """Make Square: the long side becomes the side of a square canvas, the old image centred."""
    w, h = size
    if w == h:
        raise InvalidInput("the image is already square; Make Square needs a wide or tall image")
    side = max(w, h)
    fitted = _fit(side, side, w, h, native_px)
    (cw, ch), (_, _, iw, ih) = fitted.canvas, fitted.box
    left, top = (cw - iw) // 2, (ch - ih) // 2
    return Layout((cw, ch), (left, top, left + iw, top + ih))
