"""Images users attach: size-capped, decoded by Pillow with its decompression-bomb guard, anything else refused."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
MAX_PIXELS = 4096 * 4096  # well under Pillow's own bomb limit; our engine never wants more


_KINDS = "only PNG, JPEG, WebP or GIF images work"


def _too_big(filename: str, size_bytes: int, max_bytes: int) -> str:
    return f"attachment {filename!r} is {size_bytes / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB"


class AttachmentRefused(ValueError):
    """One line saying which attachment was refused and what is allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Attached:
    """An image a user attached, already checked: its Discord CDN link and its bytes."""

    url: str
    data: bytes


@dataclass(frozen=True)
class CheckedImage:
    filename: str
    data: bytes
    format: str
    width_px: int
    height_px: int


def check_declared(filename: str, size_bytes: int, content_type: str | None, max_bytes: int) -> None:
    """Refuse before downloading: what Discord tells us about the file is enough for size and kind."""
    if size_bytes > max_bytes:
        raise AttachmentRefused(_too_big(filename, size_bytes, max_bytes))
    if content_type is not None and not content_type.startswith("image/"):
        raise AttachmentRefused(f"attachment {filename!r} is {content_type}; {_KINDS}")


def check_image(filename: str, data: bytes, max_bytes: int) -> CheckedImage:
    """Decode fully (not just the header) so a truncated or hostile file is refused here, not in the worker."""
    if len(data) > max_bytes:
        raise AttachmentRefused(_too_big(filename, len(data), max_bytes))
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that; we refuse at our own, lower limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or "?"
                width, height = image.size
                if fmt not in ALLOWED_FORMATS:
                    raise AttachmentRefused(f"attachment {filename!r} is {fmt}; {_KINDS}")
                if width * height > MAX_PIXELS:
                    raise AttachmentRefused(
                        f"attachment {filename!r} is {width}×{height} px; at most {MAX_PIXELS // 1_000_000} megapixels"
                    )
                image.load()
    except AttachmentRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AttachmentRefused(f"attachment {filename!r} is too large an image to decode safely") from None
    except (OSError, ValueError, SyntaxError):
        raise AttachmentRefused(f"attachment {filename!r} is not an image (PNG, JPEG, WebP or GIF)") from None
    return CheckedImage(filename, data, fmt, width, height)
