"""Telegram's side of the delivery core (``bots/service/delivery``): edit a job's message with its progress, post its
result as a photo with its buttons (or say why it failed), and open a message for a job born on the web. Nothing
else of delivery lives in the adapter: which message shows a job, and what it answers, come from the message index.

Telegram cannot turn a text message into a photo, so the first preview replaces the "Waiting to start" text with a
photo (recorded as kind ``preview``), and the result is a new photo replying to the command, after which the
progress message is deleted. Telegram's errors become the core's two in ``calls.call_telegram``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, TelegramError

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.service.delivery.core import Deferred, End, Gone, Step
from impasto.bots.service.result_forms import Limits, telegram_limits
from impasto.bots.service.views import JobView, MessageView
from impasto.bots.telegram import captions
from impasto.bots.telegram.calls import call_telegram
from impasto.bots.telegram.describe_result import describe_keyboard, describe_text, is_describe
from impasto.bots.telegram.keyboards import cancel_keyboard
from impasto.bots.telegram.posting import PLATFORM, caption_info, result_image, result_keyboard, thread_of_job
from impasto.bots.telegram.result_upload import send_result
from impasto.bots.web.links import WebLinkSettings, download_link
from impasto.storage.images import ImageStore

log = logging.getLogger(__name__)
PREVIEW = "preview"  # the message index's kind for a progress message that is a photo (a preview arrived)
OFFICIAL_API = "https://api.telegram.org"


class TelegramSurface:
    platform = PLATFORM

    def __init__(
        self,
        bot: Bot,
        images: ImageStore,
        *,
        limits: Limits | None = None,
        mask_editor: bool = False,
        wait_inline_s: float = 5.0,
        web: WebLinkSettings | None = None,
        download_s: int | None = None,
    ) -> None:
        self.bot = bot
        self.images = images
        # What sendPhoto / sendDocument take (a self-hosted Bot API server takes more): ``limits_for``.
        self.limits = limits or telegram_limits()
        self.mask_editor = mask_editor  # the web front door is there: offer Vary (Region)
        self.wait_inline_s = wait_inline_s
        self.web = web  # the web front door: a full PNG past the document limit is linked from it
        self.download_s = download_s  # how long that link works (None: links.LIFETIMES)

    async def open(self, reply_to: MessageView, view: JobView) -> MessageView:
        """A job born on the web: its "Waiting to start" message, as a reply to the pressed message."""
        chat = int(reply_to.chat_id)
        try:
            sent = await call_telegram(
                lambda: self.bot.send_message(
                    chat,
                    captions.waiting_caption(caption_info(view), None),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=thread_of_job(view, chat),
                    reply_parameters=_reply(reply_to.message_id),
                    reply_markup=cancel_keyboard(view.job_id, locale=view.locale),
                )
            )
        except BadRequest as exc:  # "chat not found": the bot was removed from it
            raise Gone(f"cannot post in chat {chat}: {exc}") from exc
        return MessageView(PLATFORM, str(chat), str(sent.message_id), "progress", view.queued_at)

    async def progress(self, shown: MessageView, view: JobView, step: Step) -> MessageView | None:
        info = caption_info(view)
        if step.percent is None:
            return await self._edit(shown, view, captions.waiting_caption(info, step.position), None)
        with contextlib.suppress(TelegramError, Deferred, Gone):  # "uploading a photo…" is a nicety
            await self.bot.send_chat_action(
                int(shown.chat_id), ChatAction.UPLOAD_PHOTO, message_thread_id=thread_of_job(view, int(shown.chat_id))
            )
        return await self._edit(shown, view, captions.progress_caption(info, step.percent), step.preview_png)

    async def _edit(self, shown: MessageView, view: JobView, text: str, preview: bytes | None) -> MessageView | None:
        """Edit the progress message (keeping its ❌); the first preview replaces the text message with a photo."""
        chat, message_id = int(shown.chat_id), int(shown.message_id)
        markup = cancel_keyboard(view.job_id, locale=view.locale)  # an edit without it would take the ❌ away
        try:
            if preview is not None and shown.kind == PREVIEW:
                media = InputMediaPhoto(preview, caption=text, parse_mode=ParseMode.HTML)
                await call_telegram(
                    lambda: self.bot.edit_message_media(
                        media, chat_id=chat, message_id=message_id, reply_markup=markup
                    ),
                    attempts=1,
                )
            elif preview is not None:
                sent = await call_telegram(
                    lambda: self.bot.send_photo(
                        chat,
                        preview,
                        caption=text,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                        message_thread_id=thread_of_job(view, chat),
                        reply_parameters=_reply(shown.reply_to),
                        filename=f"{view.job_id}.png",
                    ),
                    attempts=1,
                )
                await self._delete(chat, message_id)
                return MessageView(PLATFORM, shown.chat_id, str(sent.message_id), PREVIEW, shown.created_at)
            elif shown.kind == PREVIEW:
                await call_telegram(
                    lambda: self.bot.edit_message_caption(
                        chat_id=chat,
                        message_id=message_id,
                        caption=text,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                    ),
                    attempts=1,
                )
            else:
                await call_telegram(
                    lambda: self.bot.edit_message_text(
                        text, chat_id=chat, message_id=message_id, parse_mode=ParseMode.HTML, reply_markup=markup
                    ),
                    attempts=1,
                )
        except BadRequest as exc:
            # "message is not modified" / "message to edit not found" (the user deleted it): nothing to do.
            log.debug("progress edit of message %s: %s", message_id, exc)
        return None

    async def end(self, shown: MessageView, end: End) -> MessageView | None:
        try:
            return await self._end(shown, end)
        except BadRequest as exc:  # what is left after every fallback ("chat not found"): retrying cannot help
            raise Gone(f"Telegram refused the end of job {end.view.job_id}: {exc}") from exc

    async def _end(self, shown: MessageView, end: End) -> MessageView | None:
        view = end.view
        info = caption_info(view)
        if view.status == "cancelled":
            await self._final_text(shown, view, captions.cancelled_caption(info))
            return None
        if view.status != "done":
            await self._final_text(shown, view, captions.failed_caption(info, view.error or view.status))
            return None
        if is_describe(view):  # four prompts and their buttons, in place of the progress message
            return await self._final_text(shown, view, describe_text(view), describe_keyboard(view))
        if end.withheld is not None:  # held for review or removed: one line, no picture, no buttons
            # The message saying so is indexed: an approval (``Delivery.release_held``) replaces it with the result.
            return await self._final_text(
                shown, view, captions.withheld_caption(info, translate_line(end.withheld, view.locale))
            )
        try:
            key, single = result_image(view)
            png = await asyncio.to_thread(self.images.get, key)
        except (ValueError, FileNotFoundError):
            log.error("result of job %s: its image is not in the image store %s", view.job_id, self.images.root)
            await self._final_text(shown, view, captions.failed_caption(info, t("tg.not_loaded", view.locale)))
            return None
        caption = captions.result_caption(info, single=single)
        caption += captions.read_as_line(info.prompt, view.read_as, locale=view.locale)
        caption += f"\n{t('tg.noise_note', view.locale)}" if end.paints_noise else ""
        url = self._download_url(view, key)
        chat = int(shown.chat_id)
        while True:
            try:
                sent = await send_result(
                    self.bot,
                    chat,
                    png,
                    caption,
                    result_keyboard(view, mask_editor=self.mask_editor),
                    limits=self.limits,
                    name=view.job_id,
                    download_url=url,
                    thread_id=thread_of_job(view, chat),
                    reply_to=_reply(shown.reply_to),
                    wait_inline_s=self.wait_inline_s,
                    spoiler=end.spoiler,
                    locale=view.locale,
                )
                break
            except ChatMigrated as exc:  # the group became a supergroup: same people, new chat id
                chat = int(exc.new_chat_id)
        if str(chat) == shown.chat_id:
            await self._delete(chat, int(shown.message_id))
        return MessageView(PLATFORM, str(chat), str(sent.message_id), "result", shown.created_at)

    def _download_url(self, view: JobView, key: str) -> str | None:
        """The signed link to the shown picture's full PNG, made for the job's owner; None without a web front
        door (``result_forms`` uses it only when the PNG is past what a document takes)."""
        if self.web is None:
            return None
        index = next(i.index for i in view.images if i.key == key)
        return download_link(self.web, (view.platform, view.user_id), view.job_id, index, lifetime_s=self.download_s)

    async def _final_text(
        self, shown: MessageView, view: JobView, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> MessageView:
        """Failure and cancellation are never dropped: edit the progress text, or post anew (a photo's caption
        cannot hold every reason) and delete the progress photo. Returns the message that now says it."""
        chat = int(shown.chat_id)
        if shown.kind != PREVIEW:
            try:
                await call_telegram(
                    lambda: self.bot.edit_message_text(
                        text,
                        chat_id=chat,
                        message_id=int(shown.message_id),
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                    )
                )
                return shown
            except BadRequest:
                pass  # deleted by the user: say it anew
        sent = await call_telegram(
            lambda: self.bot.send_message(
                chat,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_of_job(view, chat),
                reply_parameters=_reply(shown.reply_to),
                reply_markup=markup,
            )
        )
        await self._delete(chat, int(shown.message_id))
        return MessageView(PLATFORM, str(chat), str(sent.message_id), "result", shown.created_at)

    async def _delete(self, chat_id: int, message_id: int) -> None:
        with contextlib.suppress(TelegramError, Deferred, Gone):
            await call_telegram(lambda: self.bot.delete_message(chat_id, message_id), attempts=1)


def _reply(message_id: str | None) -> ReplyParameters | None:
    # The user may have deleted their command; the result still goes to the chat.
    return ReplyParameters(int(message_id), allow_sending_without_reply=True) if message_id else None


def limits_for(api_url: str) -> Limits:
    """Photos are 10 MB everywhere; a self-hosted Bot API server (any ``IMPASTO_TELEGRAM_API_URL`` but the official
    one) takes documents of up to 2,000 MB instead of 50 MB."""
    return telegram_limits(self_hosted=api_url.rstrip("/") != OFFICIAL_API)
