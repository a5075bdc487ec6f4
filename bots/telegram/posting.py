"""Posting jobs: the progress message a new job starts with (then the delivery core's), and a finished job with its
buttons when a user asks for it (``/show``, a U pick that needs no render)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import NetworkError

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import localize
from impasto.bots.service.delivery.core import REPLY_TO, Delivery, reply_to_row
from impasto.bots.service.jobs import JobService
from impasto.bots.service.result_forms import telegram_limits
from impasto.bots.service.views import ImageView, JobTicket, JobView
from impasto.bots.telegram import captions, escaping
from impasto.bots.telegram.calls import call_telegram
from impasto.bots.telegram.keyboards import cancel_keyboard, grid_keyboard, single_keyboard
from impasto.bots.telegram.result_upload import TooLarge, send_result, too_large
from impasto.bots.telegram.uploads import STORE_URL
from impasto.bots.web.links import WebLinkSettings, download_link
from impasto.storage.images import ImageStore

_STORE_LINK = re.compile(re.escape(STORE_URL) + r"\S+")
PLATFORM = "telegram"


@dataclass(frozen=True)
class Where:
    """Where to answer: the chat, the forum topic, and the message to reply to."""

    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None

    @property
    def reply_parameters(self) -> ReplyParameters | None:
        return ReplyParameters(self.reply_to, allow_sending_without_reply=True) if self.reply_to else None


def caption_info(view: JobView) -> captions.CaptionInfo:
    # Photos a user sent travel as store links; the caption shows them as a picture sign, not a long address.
    prompt = _STORE_LINK.sub("🖼️", view.display or view.prompt)
    return captions.CaptionInfo(
        job_id=view.job_id,
        prompt=prompt,
        user_id=view.user_id,
        user_name=view.user_name,
        mode=view.mode,
        action=view.action,
        index=view.image_index,
        locale=view.locale,
    )


def thread_of_job(view: JobView, chat_id: int) -> int | None:
    """The forum topic a job was asked in (its channel is "chat:topic"), when its messages go to that chat."""
    chat, _, topic = (view.channel_id or "").partition(":")
    return int(topic) if topic.isdigit() and chat == str(chat_id) else None


def result_image(view: JobView) -> tuple[str, bool]:
    """The image key a finished job is shown by, and whether it is a single image (else the 2×2 grid)."""
    single = not view.is_grid
    image = view.image(1) if single else view.image(0) or (view.images[0] if view.images else None)
    if image is None:
        raise ValueError(f"job {view.job_id} has no images")
    return image.key, single


def result_keyboard(view: JobView, *, mask_editor: bool = False) -> InlineKeyboardMarkup:
    """The result's buttons, in the requester's language (``view.locale``)."""
    if view.is_grid:
        return grid_keyboard(view.job_id, locale=view.locale)
    return single_keyboard(view.job_id, mask_editor=mask_editor, locale=view.locale)


async def start_progress(bot: Bot, delivery: Delivery, where: Where, view: JobView, ticket: JobTicket) -> None:
    """Post "Waiting to start" for a new job and index it (with the message it answers): the delivery core edits
    it from then on, and posts the result as a reply to ``where.reply_to``."""
    service = delivery.service
    mine = [m for m in await service.messages(view.job_id) if m.platform == PLATFORM]
    if ticket.duplicate and any(m.kind != REPLY_TO for m in mine):
        return  # the same update delivered twice: its progress message already exists
    text = captions.waiting_caption(caption_info(view), None)
    if ticket.notice:
        text += f"\n{escaping.text(localize(ticket.notice, view.locale), 300)}"
    message = await call_telegram(
        lambda: bot.send_message(
            where.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
            reply_markup=cancel_keyboard(view.job_id, locale=view.locale),
        )
    )
    chat = str(where.chat_id)
    rows = [(chat, str(message.message_id), "progress")]
    if where.reply_to is not None:
        rows.append((chat, reply_to_row(view.job_id, str(where.reply_to)), REPLY_TO))
    await service.record_messages(view.job_id, PLATFORM, rows)
    await delivery.shown(view.job_id)  # a very fast job may have ended already: its result goes now


async def post_result(
    bot: Bot,
    service: JobService,
    images: ImageStore,
    where: Where,
    view: JobView,
    *,
    mask_editor: bool = False,
    spoiler: bool = False,
) -> Message:
    """A finished job as a photo with its keyboard (``/show``, U1–U4 picks); recorded for the message index.
    ``spoiler``: behind Telegram's spoiler, as the service decided for a flagged picture here."""
    key, single = result_image(view)
    photo = await asyncio.to_thread(images.get, key)
    caption = captions.result_caption(caption_info(view), single=single)
    message = await send_result(
        bot,
        where.chat_id,
        photo,
        caption,
        result_keyboard(view, mask_editor=mask_editor),
        limits=telegram_limits(),
        name=view.job_id,
        locale=view.locale,
        thread_id=where.thread_id,
        reply_to=where.reply_parameters,
        spoiler=spoiler,
    )
    await service.record_message(view.job_id, PLATFORM, str(where.chat_id), str(message.message_id), "result")
    return message


async def send_document(
    bot: Bot,
    images: ImageStore,
    where: Where,
    view: JobView,
    index: int,
    *,
    max_bytes: int | None = None,
    web: WebLinkSettings | None = None,
    download_s: int | None = None,
) -> Message:
    """The full-resolution file (Telegram recompresses photos): the grid for index 0, else the chosen image. Past
    ``max_bytes`` (what ``sendDocument`` takes here) a line with a link to it from the web front door instead, or
    one saying the full PNG is kept when there is none."""
    image = view.image(index) if index else (view.image(0) or view.image(1))
    if image is None:
        raise ValueError(f"job {view.job_id} has no image {index}")
    data = await asyncio.to_thread(images.get, image.key)
    if max_bytes is not None and len(data) > max_bytes:
        return await _link_instead(bot, where, view, image, len(data), web, download_s)
    suffix = f"-{index}" if index else ""

    async def document() -> Message:
        try:
            return await bot.send_document(
                where.chat_id,
                data,
                filename=f"impasto-{view.job_id}{suffix}.png",
                caption=f"{image.width_px}×{image.height_px} px · <code>{escaping.text(view.job_id)}</code>",
                parse_mode=ParseMode.HTML,
                message_thread_id=where.thread_id,
                reply_parameters=where.reply_parameters,
            )
        except NetworkError as exc:
            if too_large(exc):
                raise TooLarge(str(exc)) from exc
            raise

    try:
        return await call_telegram(document)
    except TooLarge:
        # Telegram takes less than the bot believed (a server's limits changed): the link, at once.
        return await _link_instead(bot, where, view, image, len(data), web, download_s)


async def _link_instead(
    bot: Bot,
    where: Where,
    view: JobView,
    image: ImageView,
    size: int,
    web: WebLinkSettings | None,
    download_s: int | None,
) -> Message:
    """A full PNG too large for a Telegram document: the signed download link (made for the job's owner), or a line
    saying it is kept."""
    what = f"{image.width_px}×{image.height_px} PNG, {size / 1e6:.1f} MB"
    markup = None
    if web is None:
        text = t("tg.full_kept", view.locale, what=what)
    else:
        url = download_link(web, (view.platform, view.user_id), view.job_id, image.index, lifetime_s=download_s)
        text = t("tg.full_link", view.locale, what=what)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(t("tg.download_button", view.locale), url=url)]])
    return await call_telegram(
        lambda: bot.send_message(
            where.chat_id,
            text,
            reply_markup=markup,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
        )
    )
