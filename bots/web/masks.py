"""The mask a user drew: checked, normalised to black and white, stored.

The browser sends the canvas as a PNG data URL. Here it is size-capped, decoded by Pillow with the
decompression-bomb guard turned into an error, required to match the source image's size, thresholded (any painted
pixel is white = repaint, the rest black) and stored as an 8-bit greyscale PNG in the image store, whose key the
region job carries.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image, ImageChops

from impasto.storage.images import ImageStore

#: A 2048² black-and-white PNG is a few tens of KB; anything near this cap is not a mask.
MAX_MASK_BYTES = 2 * 1024 * 1024
#: More pixels than this is refused from the header, before decoding (a 4096² mask is plenty); Pillow's own
#: decompression-bomb warning is turned into an error as well.
MAX_MASK_PIXELS = 4096 * 4096
DATA_URL_PREFIX = "data:image/png;base64,"


class MaskError(Exception):
    """A refused mask: ``message`` in English, ``key`` and ``fields`` its catalog message (the page's language)."""

    def __init__(self, message: str, key: str = "", **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.fields = fields


def png_from_data_url(value: str) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,…`` URL, capped at ``MAX_MASK_BYTES``."""
    if not value.startswith(DATA_URL_PREFIX):
        raise MaskError(
            "the mask must be a PNG drawn in the editor; draw the area to repaint and submit again", "web.mask_not_data"
        )
    encoded = value[len(DATA_URL_PREFIX) :]
    if len(encoded) > MAX_MASK_BYTES * 4 // 3 + 4:
        raise MaskError(
            f"the mask is larger than {MAX_MASK_BYTES // 1024} KB; a drawn mask is far smaller",
            "web.mask_too_big",
            kb=MAX_MASK_BYTES // 1024,
        )
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MaskError(
            "the mask is not valid base64 PNG data; draw it again and submit", "web.mask_bad_base64"
        ) from None


def normalise_mask(data: bytes, size: tuple[int, int]) -> bytes:
    """A black/white greyscale PNG of ``data`` (white where anything was painted), which must be ``size`` pixels."""
    if len(data) > MAX_MASK_BYTES:
        raise MaskError(
            f"the mask is larger than {MAX_MASK_BYTES // 1024} KB; a drawn mask is far smaller",
            "web.mask_too_big",
            kb=MAX_MASK_BYTES // 1024,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # The header alone gives the size: refuse before any pixel is decoded.
                if image.format != "PNG":
                    raise MaskError("the mask must be a PNG image", "web.mask_not_png")
                if image.size[0] * image.size[1] > MAX_MASK_PIXELS:
                    raise MaskError(
                        f"the mask has too many pixels (at most {MAX_MASK_PIXELS})",
                        "web.mask_too_many_pixels",
                        max=MAX_MASK_PIXELS,
                    )
                if image.size != size:
                    raise MaskError(
                        f"the mask is {image.size[0]}×{image.size[1]} but the image is {size[0]}×{size[1]}; "
                        "reload the editor and draw again",
                        "web.mask_wrong_size",
                        mw=image.size[0],
                        mh=image.size[1],
                        iw=size[0],
                        ih=size[1],
                    )
                # White where painted: brightness times opacity, so an opaque black/white mask (what the editor
                # sends) and white strokes on a transparent canvas both read right.
                rgba = image.convert("RGBA")
                painted = ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MaskError(
            f"the mask has too many pixels (at most {MAX_MASK_PIXELS})", "web.mask_too_many_pixels", max=MAX_MASK_PIXELS
        ) from None
    except (OSError, SyntaxError, ValueError):
        raise MaskError(
            "the mask is not a readable PNG image; draw it again and submit", "web.mask_unreadable"
        ) from None
    binary = painted.point(lambda v: 255 if v >= 128 else 0, mode="L")
    if binary.getbbox() is None:
        raise MaskError(
            "the mask is empty: paint the area to repaint (brush, rectangle or lasso), then submit", "web.mask_empty"
        )
    out = io.BytesIO()
    binary.save(out, format="PNG", optimize=True)
    return out.getvalue()


def store_mask(images: ImageStore, data_url: str, size: tuple[int, int]) -> str:
    """Check, normalise and store a drawn mask; its store key."""
    return images.put(normalise_mask(png_from_data_url(data_url), size), ext="png")
