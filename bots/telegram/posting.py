"""Posting jobs: the progress message a new job starts with, and a finished job with its buttons."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ParseMode

from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import JobTicket, JobView
from impasto.bots.telegram import captions, escaping
from impasto.bots.telegram.delivery import ResultSent, call_telegram
from impasto.bots.telegram.keyboards import cancel_keyboard, grid_keyboard, single_keyboard
from impasto.bots.telegram.routes import Route, Routes
from impasto.bots.telegram.uploads import STORE_URL
from impasto.storage.images import ImageStore

_STORE_LINK = re.compile(re.escape(STORE_URL) + r"\S+")


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
    )


async def start_progress(
    bot: Bot, routes: Routes, service: JobService, where: Where, view: JobView, ticket: JobTicket
) -> Route:
    """Post "Waiting to start" for a new job and remember where its events go."""
    info = caption_info(view)
    route = await routes.get(view.job_id)
    if ticket.duplicate and route is not None:
        return route  # the same update delivered twice: its progress message already exists
    text = captions.waiting_caption(info, None)
    if ticket.notice:
        text += f"\n{escaping.text(ticket.notice, 300)}"
    message = await call_telegram(
        lambda: bot.send_message(
            where.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
            reply_markup=cancel_keyboard(view.job_id),
        )
    )
    route = Route(
        view.job_id,
        where.chat_id,
        info,
        thread_id=where.thread_id,
        reply_to=where.reply_to,
        progress_message_id=message.message_id,
    )
    await routes.save(route)
    await service.record_message(view.job_id, "telegram", str(where.chat_id), str(message.message_id), "progress")
    return route


async def post_result(
    bot: Bot, service: JobService, images: ImageStore, where: Where, view: JobView, *, mask_editor: bool = False
) -> Message:
    """A finished job as a photo with its keyboard (``/show``, U1–U4 picks); recorded for the message index."""
    grid = view.image(0)
    single = not view.is_grid
    image = view.image(1) if single else grid or (view.images[0] if view.images else None)
    if image is None:
        raise ValueError(f"job {view.job_id} has no images")
    photo = await asyncio.to_thread(images.get, image.key)
    caption = captions.result_caption(caption_info(view), single=single)
    markup = single_keyboard(view.job_id, mask_editor=mask_editor) if single else grid_keyboard(view.job_id)
    message = await call_telegram(
        lambda: bot.send_photo(
            where.chat_id,
            photo,
            caption=caption,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
            filename=f"{view.job_id}.png",
        )
    )
    await service.record_message(view.job_id, "telegram", str(where.chat_id), str(message.message_id), "result")
    return message


async def send_document(bot: Bot, images: ImageStore, where: Where, view: JobView, index: int) -> Message:
    """The full-resolution file (Telegram recompresses photos): the grid for index 0, else the chosen image."""
    image = view.image(index) if index else (view.image(0) or view.image(1))
    if image is None:
        raise ValueError(f"job {view.job_id} has no image {index}")
    data = await asyncio.to_thread(images.get, image.key)
    suffix = f"-{index}" if index else ""
    return await call_telegram(
        lambda: bot.send_document(
            where.chat_id,
            data,
            filename=f"impasto-{view.job_id}{suffix}.png",
            caption=f"{image.width_px}×{image.height_px} px · <code>{escaping.text(view.job_id)}</code>",
            parse_mode=ParseMode.HTML,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
        )
    )


def result_recorder(service: JobService) -> Callable[[ResultSent], Awaitable[None]]:
    """The Deliverer's hook: index each posted result so /show and message lookups find it."""

    async def record(sent: ResultSent) -> None:
        await service.record_message(sent.job_id, "telegram", str(sent.chat_id), str(sent.message_id), "result")

    return record
