"""Decoding user images safely and encoding ours.

Pillow's decompression-bomb guard: an image over ``MAX_IMAGE_PIXELS`` is refused (Pillow warns at 1× and raises at
2×; we turn the warning into the same refusal), before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, PngImagePlugin

from impasto.engine.errors import InvalidInput

#: 64 megapixels: far above anything a 2× upscale of a 2048 px image needs, far below a bomb.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


def decode_image(data: bytes, *, what: str = "image", mode: str = "RGB") -> Image.Image:
    """Decode PNG/JPEG/WebP bytes to a fully loaded Pillow image in ``mode``; refuse bombs and non-images."""
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidInput(f"the {what} is too large to decode (limit {MAX_IMAGE_PIXELS} pixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's "cannot identify image file" and friends
        raise InvalidInput(f"the {what} is not a readable PNG, JPEG or WebP image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    return image.convert(mode) if image.mode != mode else image


def encode_png(image: Image.Image, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes, with ``text`` as tEXt/iTXt chunks (the provenance)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value) if not value.isascii() else info.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG (empty for other formats)."""
    try:
        image = decode_image(data)
    except InvalidInput:
        return {}
    text = getattr(image, "text", None)
    if text is None:  # convert() drops .text; read it from a fresh open
        with Image.open(io.BytesIO(data)) as raw:
            text = getattr(raw, "text", {})
    return {str(k): str(v) for k, v in dict(text).items()}
