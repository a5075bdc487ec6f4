"""What to upload for a result, given what the destination accepts: the PNG when it fits, else smaller forms.

Discord refuses an attachment past the destination's limit (HTTP 413, error 40005) and the limit differs by server
boost tier and changes over the years; Telegram takes 10 MB through ``sendPhoto`` and 50 MB through
``sendDocument`` (2,000 MB through a self-hosted Bot API server). A 4× upscale of a 1024² image is about 30 MB of PNG,
so the delivery core asks here what to send:

1. the PNG, when it fits;
2. else a lossless WebP (the same pixels, often a third smaller), when it fits;
3. else a high-quality JPEG for viewing (made smaller until it fits), plus the full PNG as a document where the
   platform has a channel for one that fits, else a signed download link from the web front door, else a caption
   saying the full PNG is kept.

After a refusal as too large anyway (a limit lowered below what the bot believed), ``choose(..., below=N)`` gives
the next form strictly smaller than the ``N`` bytes that were refused. Platform-neutral and pure (Pillow only).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t

MIB = 1024 * 1024
MB = 1000 * 1000
# Discord's upload limit by server boost tier (bytes), used when an interaction did not say
# (``attachment_size_limit`` in every interaction payload is the truth when there is one).
DISCORD_TIER_LIMITS = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
TELEGRAM_PHOTO_BYTES = 10 * MB
TELEGRAM_DOCUMENT_BYTES = 50 * MB
TELEGRAM_SELF_HOSTED_BYTES = 2000 * MB
JPEG_QUALITIES = (92, 85)
# Lossless WebP is tried only when it could fit: a rendered picture's is not expected below this share of its PNG
# (0.91 for a smooth 2048² picture, 1.0 for noise: tests/service/bench_result_forms.py), and encoding a 4096² one
# takes 4–15 s for nothing when the PNG is several times the limit.
WEBP_AT_BEST = 0.5


@dataclass(frozen=True)
class Limits:
    inline_bytes: int  # the largest image shown in the chat (a Discord attachment, a Telegram photo)
    document_bytes: int | None = None  # the largest file sent beside it as a download (Telegram); None: no such way


def discord_limits(attachment_size_limit: int | None = None, *, premium_tier: int | None = None) -> Limits:
    """The interaction's ``attachment_size_limit`` when known, else the boost tier's (DMs: tier 0)."""
    if attachment_size_limit:
        return Limits(inline_bytes=attachment_size_limit)
    return Limits(inline_bytes=DISCORD_TIER_LIMITS.get(premium_tier or 0, DISCORD_TIER_LIMITS[0]))


def telegram_limits(*, self_hosted: bool = False) -> Limits:
    """Photos are capped at 10 MB everywhere; documents at 50 MB, or 2,000 MB through a self-hosted Bot API server."""
    return Limits(
        inline_bytes=TELEGRAM_PHOTO_BYTES,
        document_bytes=TELEGRAM_SELF_HOSTED_BYTES if self_hosted else TELEGRAM_DOCUMENT_BYTES,
    )


@dataclass(frozen=True)
class Form:
    data: bytes
    ext: str  # "png", "webp", "jpg"
    mime: str
    label: str  # "PNG", "lossless WebP", "JPEG"
    width: int
    height: int


@dataclass(frozen=True)
class Choice:
    """What to send: ``view`` shown in the chat; ``document`` (the full PNG) beside it, or a link, or a note."""

    view: Form
    png_bytes: int
    width: int
    height: int
    document: bytes | None = None
    download_url: str | None = None

    @property
    def is_full_png(self) -> bool:
        return self.view.ext == "png"

    @property
    def full_size(self) -> str:
        """The full resolution in words: "2048×2048 PNG, 6.3 MB"."""
        return f"{self.width}×{self.height} PNG, {_megabytes(self.png_bytes)}"

    def caption_line(self, link: str = "{label}: {url}", *, locale: str = DEFAULT_LOCALE) -> str:
        """One line for the caption saying what the full resolution is and how to get it, in ``locale``; "" for the
        PNG itself. ``link`` spells the download link in the platform's markup (Discord: ``"[{label}](<{url}>)"``;
        ``{label}`` is the word "download" in ``locale``)."""
        if self.is_full_png:
            return ""
        size = self.full_size
        if self.view.label == "lossless WebP":
            return t("caption.full_webp", locale, size=size)
        if self.document is not None:
            return t("caption.full_document", locale, size=size)
        if self.download_url is not None:
            shown = link.format(url=self.download_url, label=t("caption.download", locale))
            return t("caption.full_link", locale, size=size, link=shown)
        return t("caption.full_kept", locale, size=size)


class NothingFits(Exception):
    """Not even the smallest viewable form fits the destination (a limit under a few kilobytes)."""


def choose(png: bytes, limits: Limits, *, download_url: str | None = None, below: int | None = None) -> Choice:
    """The first form of ``png`` that fits ``limits.inline_bytes`` (and is smaller than ``below`` bytes, when a
    larger one was refused), with the full PNG as a document or a link when the view is not the PNG itself."""
    cap = limits.inline_bytes if below is None else min(limits.inline_bytes, below - 1)
    with Image.open(io.BytesIO(png)) as probe:
        width, height = probe.size
    for form in forms(png, webp=len(png) * WEBP_AT_BEST <= cap):
        if len(form.data) > cap:
            continue
        if form.ext == "png":
            return Choice(form, len(png), width, height)
        fits_document = limits.document_bytes is not None and len(png) <= limits.document_bytes
        return Choice(
            form,
            len(png),
            width,
            height,
            document=png if fits_document else None,
            download_url=None if fits_document else download_url,
        )
    raise NothingFits(f"no form of a {width}×{height} image fits in {cap} bytes")


def forms(png: bytes, *, webp: bool = True) -> Iterator[Form]:
    """The PNG itself, then lossless WebP (unless ``webp`` is False), then JPEGs at falling quality, then JPEGs at
    half the side, and so on: each made only when the one before did not fit (encoding a 4096² WebP takes seconds)."""
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGBA") if opened.mode in ("RGBA", "LA", "P") else opened.convert("RGB")
    yield Form(png, "png", "image/png", "PNG", image.width, image.height)
    # Lossless WebP at a low effort: 0.7 s for a 2048² picture and smaller than its PNG, where the default effort
    # took 10–50 s for a file no smaller (tests/service/bench_result_forms.py): delivery must not stall on it.
    if webp:
        yield _encode(image, "WEBP", lossless=True, quality=10, method=1)
    rgb = image.convert("RGB")
    while True:
        for quality in JPEG_QUALITIES:
            yield _encode(rgb, "JPEG", quality=quality, optimize=True)
        if min(rgb.size) <= 64:
            return
        rgb = rgb.resize((max(1, rgb.width // 2), max(1, rgb.height // 2)), Image.Resampling.LANCZOS)


def _encode(image: Image.Image, fmt: str, **options: object) -> Form:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    if fmt == "WEBP":
        return Form(buffer.getvalue(), "webp", "image/webp", "lossless WebP", image.width, image.height)
    return Form(buffer.getvalue(), "jpg", "image/jpeg", "JPEG", image.width, image.height)


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{size / 1000:.0f} kB"
