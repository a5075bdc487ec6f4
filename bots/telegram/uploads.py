"""Photos users send: fetched through the Bot API only, size-capped, and decoded under Pillow's bomb guard.

Nothing here follows a URL a user typed: a Telegram ``file_id`` goes through ``getFile`` and the bot's own file
endpoint, so a user cannot make the bot fetch from their server or read a local path.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from telegram import Bot
from telegram.error import BadRequest

from impasto.bots.service.fetch import FetchError, FetchImage
from impasto.storage.images import KEY_PATTERN, ImageStore

MAX_PIXELS = 40_000_000  # well above any camera photo, far below what would exhaust a small bot host
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})

# A user's photo, once checked and stored, travels in the prompt as this link (``.invalid`` is reserved by RFC 2606:
# nothing ever resolves it). The bot's real file URL would carry its token into the database and the prompt.
STORE_URL = "https://telegram.invalid/"


def store_url(key: str) -> str:
    return STORE_URL + key


def store_fetcher(images: ImageStore, fallback: FetchImage) -> FetchImage:
    """The job service's image fetcher for a Telegram bot: our own store links are read from the store, every other
    link (one a user typed) goes to ``fallback`` (the capped HTTP fetcher)."""

    async def fetch(url: str) -> bytes:
        if url.startswith(STORE_URL):
            key = url.removeprefix(STORE_URL)
            # A bucket behind the store is network I/O: off the event loop.
            if not KEY_PATTERN.match(key) or not await asyncio.to_thread(images.exists, key):
                raise FetchError("is not an image this bot received")
            return await asyncio.to_thread(images.get, key)
        return await fallback(url)

    return fetch


class UploadRefused(Exception):
    """A user's file cannot be used; ``message`` is the one line to show them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class UploadedImage:
    data: bytes  # the file as sent, already proven to decode
    format: str  # "PNG" | "JPEG" | "WEBP"
    width_px: int
    height_px: int


async def download_image(bot: Bot, file_id: str, *, declared_bytes: int | None, max_bytes: int) -> UploadedImage:
    """Fetch ``file_id`` and check it is a usable image; raise ``UploadRefused`` with a user-facing reason if not."""
    limit_mb = max_bytes / 1024 / 1024
    if declared_bytes is not None and declared_bytes > max_bytes:
        raise UploadRefused(f"That file is {declared_bytes / 1024 / 1024:.1f} MB; the limit is {limit_mb:.0f} MB.")
    try:
        tg_file = await bot.get_file(file_id)
        if tg_file.file_size is not None and tg_file.file_size > max_bytes:
            size_mb = tg_file.file_size / 1024 / 1024
            raise UploadRefused(f"That file is {size_mb:.1f} MB; the limit is {limit_mb:.0f} MB.")
        data = bytes(await tg_file.download_as_bytearray())
    except BadRequest:
        # Telegram refuses files over its 20 MB bot limit ("file is too big") and stale or foreign file ids; found by
        # the update fuzzer, where it used to escape the handler.
        raise UploadRefused(
            "Telegram would not hand over that file (too big or no longer available); send it again."
        ) from None
    if len(data) > max_bytes:
        raise UploadRefused(f"That file is over the {limit_mb:.0f} MB limit.")
    return check_image(data)


def check_image(data: bytes) -> UploadedImage:
    """Decode ``data`` fully with the decompression-bomb guard as an error, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ACCEPTED_FORMATS:
                    raise UploadRefused(f"That file is {image.format}; send a PNG, JPEG or WebP image.")
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UploadRefused(f"That image is {width}×{height} pixels; the limit is 40 megapixels.")
                image.load()
                fmt = image.format
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise UploadRefused("That image is too large to decode safely; the limit is 40 megapixels.") from None
        except UnidentifiedImageError:
            raise UploadRefused("That file is not an image; send a PNG, JPEG or WebP photo.") from None
        except (OSError, ValueError, SyntaxError):
            raise UploadRefused("That image is damaged and cannot be read; send it again.") from None
    return UploadedImage(data=data, format=fmt, width_px=width, height_px=height)
