"""A result picture sent in the largest form Telegram takes here: the PNG when ``sendPhoto`` takes it, else lossless
WebP, else a JPEG for viewing with a line saying where the full PNG is (``result_forms`` chooses; the full PNG stays
one 📄 press away). Telegram saying "too large" in any of its ways sends the next smaller form at once; a photo it
refuses for another reason (its dimensions) goes as a file, with its buttons.
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import replace

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, NetworkError

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.service import result_forms
from impasto.bots.service.delivery.core import Gone
from impasto.bots.telegram.calls import call_telegram

log = logging.getLogger(__name__)

# Telegram's ways of saying "too large": "file is too big", PHOTO_SAVE_FILE_INVALID, and an HTTP 413, which
# python-telegram-bot raises as a ``NetworkError``.
_TOO_LARGE_SIGNS = ("too big", "too large", "photo_save_file_invalid", "413", "entity too large")


class TooLarge(Exception):
    """Telegram refused an upload as too large: the next smaller form goes at once."""


def too_large(exc: NetworkError) -> bool:
    """Whether Telegram refused an upload as too large, in any of its ways."""
    return any(sign in str(exc).lower() for sign in _TOO_LARGE_SIGNS)


async def send_result(
    bot: Bot,
    chat_id: int,
    png: bytes,
    caption: str,
    markup: InlineKeyboardMarkup,
    *,
    limits: result_forms.Limits,
    name: str,
    download_url: str | None = None,
    thread_id: int | None = None,
    reply_to: ReplyParameters | None = None,
    wait_inline_s: float = 5.0,
    spoiler: bool = False,
    locale: str = DEFAULT_LOCALE,
) -> Message:
    """``spoiler``: the photo goes behind Telegram's spoiler (``has_spoiler``), as the delivery core decided."""
    below: int | None = None
    while True:
        try:
            choice = await asyncio.to_thread(result_forms.choose, png, limits, below=below, download_url=download_url)
        except result_forms.NothingFits as exc:
            raise Gone(f"result {name}: {exc}") from exc
        form, text = choice.view, caption + full_resolution_line(choice, locale)

        async def photo(form: result_forms.Form = form, text: str = text) -> Message:
            try:
                return await bot.send_photo(
                    chat_id,
                    form.data,
                    caption=text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    message_thread_id=thread_id,
                    reply_parameters=reply_to,
                    filename=f"{name}.{form.ext}",
                    has_spoiler=spoiler,
                )
            except NetworkError as exc:
                if too_large(exc):
                    raise TooLarge(str(exc)) from exc
                raise

        async def document(form: result_forms.Form = form, text: str = text) -> Message:
            return await bot.send_document(
                chat_id,
                form.data,
                filename=f"{name}.{form.ext}",
                caption=text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                message_thread_id=thread_id,
                reply_parameters=reply_to,
            )

        try:
            return await call_telegram(photo, wait_inline_s=wait_inline_s)
        except TooLarge as exc:
            log.warning("result %s refused as too large (%s); sending a smaller form", name, exc)
            below = len(form.data)
        except ChatMigrated:
            raise  # the caller sends again to the new chat id
        except BadRequest as exc:
            log.warning("result %s refused as a photo (%s); sending it as a file", name, exc)
            return await call_telegram(document, wait_inline_s=wait_inline_s)


def full_resolution_line(choice: result_forms.Choice, locale: str = DEFAULT_LOCALE) -> str:
    """Under a result sent in a smaller form: what the full resolution is and how to get it ("" for the PNG). The
    full PNG is not sent beside the result here: the 📄 Full-res file button sends it where a document takes it;
    past that, the line links it from the web front door."""
    if choice.download_url is not None:
        choice = replace(choice, download_url=html.escape(choice.download_url))
    shown_as_webp = choice.view.label == "lossless WebP"
    if choice.document is not None and not choice.is_full_png and not shown_as_webp:  # 📄 Full-res file sends it
        line = t("caption.full_link", locale, size=choice.full_size, link=t("tg.press_file", locale))
        return f"\n<i>{line}</i>"
    line = choice.caption_line(link='<a href="{url}">{label}</a>', locale=locale)
    return f"\n<i>{line}</i>" if line else ""
