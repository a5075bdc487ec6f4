"""Answering users in one line: the neutral error for anything a user caused, and a safe reply helper."""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.locale import negotiate
from impasto.bots.telegram import escaping

log = logging.getLogger(__name__)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def reply_html(message: Message, html_text: str) -> Message | None:
    """Reply in the message's chat and topic; a chat that blocked the bot is logged, not raised."""
    try:
        return await message.reply_html(html_text, do_quote=True, link_preview_options=_NO_PREVIEW)
    except BadRequest as exc:
        if "message to be replied not found" not in str(exc).lower():
            raise
        return await message.get_bot().send_message(
            message.chat_id, html_text, parse_mode=ParseMode.HTML, message_thread_id=message.message_thread_id
        )
    except Forbidden:
        log.info("chat %s blocked the bot; reply dropped", message.chat_id)
        return None


async def reply_error(message: Message, text: str) -> None:
    """A user-facing error: one escaped line, never a traceback."""
    if text.strip():
        line = text.strip().splitlines()[0]
    else:
        line = t(
            "tg.something_wrong", negotiate(platform=message.from_user.language_code if message.from_user else None)
        )
    try:
        await reply_html(message, f"⚠️ {escaping.text(line, 500)}")
    except TelegramError:
        log.exception("could not deliver an error reply to chat %s", message.chat_id)
