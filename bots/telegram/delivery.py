"""From queue events to Telegram messages: the progress message edited in place, then the result with its buttons.

Events come from the Redis stream through the ``telegram`` consumer group, so exactly one bot process handles each.
Progress edits are lossy on purpose (at most one per chat every few seconds, Telegram's limits); results are not:
a result that cannot be posted (429, network) is scheduled for redelivery in Redis and posted later by whichever
process is alive, from the stored images. ``TelegramError`` is translated here, and only here, into
``DeliveryDeferred`` (try again later) or ``DeliveryDropped`` (the chat is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from impasto.bots.service import result_forms
from impasto.bots.telegram import captions
from impasto.bots.telegram.keyboards import cancel_keyboard, grid_keyboard, single_keyboard
from impasto.bots.telegram.routes import Route, Routes
from impasto.queue import events
from impasto.storage.images import ImageStore

log = logging.getLogger(__name__)

GROUP = "telegram"
ORPHAN_RETRIES = 3
T = TypeVar("T")


class DeliveryDeferred(Exception):
    """Telegram asked us to wait (429) or could not be reached; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class DeliveryDropped(Exception):
    """The chat cannot receive messages any more (the bot was blocked or removed): nothing to retry."""


def retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 keeps the timedelta privately and warns when the public int is read; take the timedelta if present.
    value = getattr(exc, "_retry_after", None)
    if not isinstance(value, dt.timedelta):
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


async def call_telegram(make: Callable[[], Awaitable[T]], *, wait_inline_s: float = 5.0, attempts: int = 3) -> T:
    """Run one Bot API call, sleeping through short 429s; longer waits and network trouble become deferrals."""
    for attempt in range(attempts):
        try:
            return await make()
        except RetryAfter as exc:
            wait_s = retry_after_seconds(exc)
            if wait_s > wait_inline_s or attempt == attempts - 1:
                raise DeliveryDeferred(wait_s, str(exc)) from exc
            await asyncio.sleep(wait_s)
        except Forbidden as exc:
            raise DeliveryDropped(str(exc)) from exc
        except NetworkError as exc:  # includes TimedOut; BadRequest is not a NetworkError subclass
            if isinstance(exc, BadRequest):
                raise
            if attempt == attempts - 1:
                raise DeliveryDeferred(5.0, str(exc)) from exc
            await asyncio.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ResultSent:
    """What the delivery posted, for the job service's message index (``/show``, buttons by message)."""

    job_id: str
    chat_id: int
    message_id: int


class Deliverer:
    """Turns one job's events into Telegram calls. Safe to run in several processes at once."""

    def __init__(
        self,
        bot: Bot,
        redis: Redis,
        images: ImageStore,
        *,
        edit_interval_s: float = 3.0,
        action_interval_s: float = 4.5,
        wait_inline_s: float = 5.0,
        group: str = GROUP,
        routes: Routes | None = None,
        on_result: Callable[[ResultSent], Awaitable[None]] | None = None,
        mask_editor: bool = False,
        limits: result_forms.Limits | None = None,
    ) -> None:
        self.bot = bot
        # What sendPhoto / sendDocument take (a self-hosted Bot API server takes more): ``result_forms``.
        self.limits = limits or result_forms.telegram_limits()
        self.mask_editor = mask_editor  # the web front door is there: offer Vary (Region)
        self.redis = redis
        self.routes = routes or Routes(redis)
        self.images = images
        self.edit_interval_s = edit_interval_s
        self.action_interval_s = action_interval_s
        self.on_result = on_result
        self.wait_inline_s = wait_inline_s
        self.group = group
        self.reconnect_s = 1.0

    # ---- the loops -------------------------------------------------------------------------------------------
    async def run(self, *, consumer: str | None = None, redeliver_every_s: float = 1.0) -> None:
        """Consume events and drain the redelivery schedule until cancelled."""
        name = consumer or consumer_name()
        redeliver = asyncio.create_task(self._redeliver_loop(redeliver_every_s))
        try:
            while True:
                try:
                    await self._consume(name)
                except RedisError as exc:
                    # Redis restarted or the stream was removed: the group is re-created on the next read, and
                    # what we had not acknowledged is delivered to us again.
                    log.warning("event stream unavailable (%s); retrying in %.0f s", exc, self.reconnect_s)
                    await asyncio.sleep(self.reconnect_s)
        finally:
            redeliver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await redeliver

    async def _consume(self, name: str) -> None:
        ns = self.routes.ns
        async for delivery in events.consume(self.redis, group=self.group, consumer=name, block_ms=1000, ns=ns):
            try:
                await self.handle(delivery.event)
            except RedisError:
                raise
            except Exception:
                log.exception("event %s for job %s not handled", delivery.event.kind, delivery.event.job_id)
            await events.ack(self.redis, self.group, delivery.entry_id, ns=ns)

    async def _redeliver_loop(self, every_s: float) -> None:
        while True:
            try:
                due = await self.routes.due_redeliveries()
            except RedisError as exc:
                log.warning("redelivery schedule unavailable: %s", exc)
                due = []
            for job_id, payload in due:
                try:
                    done = events.Done.model_validate_json(payload)
                    await self.deliver_result(done)
                except Exception:
                    log.exception("redelivery of job %s failed", job_id)
            await asyncio.sleep(every_s)

    # ---- one event -------------------------------------------------------------------------------------------
    async def handle(self, event: events.Event) -> None:
        if isinstance(event, events.Done):
            await self.deliver_result(event)
            return
        route = await self.routes.get(event.job_id)
        if route is None:
            return  # a Discord or console job, or one from before our routes expired
        try:
            if isinstance(event, events.Failed):
                await self._final_text(route, captions.failed_caption(route.caption, event.message))
            elif isinstance(event, events.Cancelled):
                await self._final_text(route, captions.cancelled_caption(route.caption))
            elif isinstance(event, events.Queued):
                if await self.routes.gate("edit", route.chat_id, self.edit_interval_s):
                    await self._edit_progress(route, captions.waiting_caption(route.caption, event.position), None)
            elif isinstance(event, events.Started | events.Progress):
                await self._progress(route, event)
        except (DeliveryDeferred, DeliveryDropped) as exc:
            log.info("progress for job %s skipped: %s", event.job_id, exc)

    async def _progress(self, route: Route, event: events.Started | events.Progress) -> None:
        if await self.routes.gate("action", route.chat_id, self.action_interval_s):
            await call_telegram(
                lambda: self.bot.send_chat_action(
                    route.chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=route.thread_id
                ),
                wait_inline_s=0,
                attempts=1,
            )
        if not await self.routes.gate("edit", route.chat_id, self.edit_interval_s):
            return
        if isinstance(event, events.Started):
            await self._edit_progress(route, captions.progress_caption(route.caption, 0), None)
        else:
            percent = int(100 * event.step / event.total) if event.total else 0
            await self._edit_progress(route, captions.progress_caption(route.caption, percent), event.preview_png)

    async def _edit_progress(self, route: Route, text: str, preview: bytes | None) -> None:
        """Edit the progress message; the first preview turns it from text into a photo (Telegram cannot edit a
        text message into a photo, so that one time it is replaced)."""
        if route.progress_message_id is None:
            return
        chat, message_id = route.chat_id, route.progress_message_id
        markup = cancel_keyboard(route.job_id)  # an edit without it would take the ❌ away
        try:
            if preview is not None and route.progress_is_photo:
                media = InputMediaPhoto(preview, caption=text, parse_mode=ParseMode.HTML)
                await call_telegram(
                    lambda: self.bot.edit_message_media(
                        media, chat_id=chat, message_id=message_id, reply_markup=markup
                    ),
                    attempts=1,
                )
            elif preview is not None:
                sent = await call_telegram(lambda: self._send_photo(route, preview, text, markup), attempts=1)
                await self.routes.save(route.with_progress(sent.message_id, is_photo=True))
                await self._delete(chat, message_id)
            elif route.progress_is_photo:
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
                        text, chat_id=chat, message_id=message_id, parse_mode="HTML", reply_markup=markup
                    ),
                    attempts=1,
                )
        except BadRequest as exc:
            # "message is not modified" / "message to edit not found" (the user deleted it): nothing to do.
            log.debug("progress edit for job %s: %s", route.job_id, exc)

    async def _final_text(self, route: Route, text: str) -> None:
        """Failure and cancellation are never dropped: edit the progress message, or post a new one."""
        if route.progress_message_id is not None and not route.progress_is_photo:
            try:
                await call_telegram(
                    lambda: self.bot.edit_message_text(
                        text, chat_id=route.chat_id, message_id=route.progress_message_id, parse_mode="HTML"
                    )
                )
                return
            except BadRequest:
                pass
        await call_telegram(
            lambda: self.bot.send_message(
                route.chat_id,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=route.thread_id,
                reply_parameters=_reply_to(route.reply_to),
            )
        )
        if route.progress_message_id is not None:
            await self._delete(route.chat_id, route.progress_message_id)

    # ---- results ---------------------------------------------------------------------------------------------
    async def deliver_result(self, done: events.Done, *, attempt: int = 0) -> ResultSent | None:
        """Post the finished job once. On a 429 or network trouble it is scheduled again, never lost."""
        route = await self.routes.get(done.job_id)
        if route is None:
            # Not ours (a Discord or console job), or ours finishing before its route was saved (a very fast
            # render): look again a few times before letting it go.
            if await self.routes.count_orphan(done.job_id) <= ORPHAN_RETRIES:
                await self.routes.schedule_redelivery(done.job_id, done.model_dump_json(), 1.0)
            return None
        if await self.routes.delivered(done.job_id) or not await self.routes.claim("result", done.job_id, 120):
            return None
        try:
            sent = await self._post_result(route, done)
        except DeliveryDeferred as exc:
            log.warning("result of job %s deferred %.0f s: %s", done.job_id, exc.retry_after_s, exc)
            await self.routes.schedule_redelivery(done.job_id, done.model_dump_json(), max(exc.retry_after_s, 1.0))
            return None
        except DeliveryDropped as exc:
            log.info("result of job %s dropped: %s", done.job_id, exc)
            await self.routes.mark_delivered(done.job_id)
            return None
        except FileNotFoundError:
            log.error("result of job %s: its images are not in the image store %s", done.job_id, self.images.root)
            await self.routes.mark_delivered(done.job_id)
            await self._final_text(route, captions.failed_caption(route.caption, "The result could not be loaded."))
            return None
        finally:
            await self.routes.release("result", done.job_id)
        await self.routes.mark_delivered(done.job_id)
        result = ResultSent(done.job_id, route.chat_id, sent.message_id)
        if self.on_result is not None:
            await self.on_result(result)
        if route.progress_message_id is not None:
            await self._delete(route.chat_id, route.progress_message_id)
        return result

    async def _post_result(self, route: Route, done: events.Done) -> Message:
        single = done.grid_key is None and len(done.image_keys) == 1
        key = done.image_keys[0] if single else (done.grid_key or done.image_keys[0])
        png = await asyncio.to_thread(self.images.get, key)
        caption = captions.result_caption(route.caption, single=single)
        caption += captions.read_as_line(route.caption.prompt, done.read_as)
        if done.paints_noise:
            caption += "\n🧪 <i>test model: the picture is noise</i>"
        markup = single_keyboard(done.job_id, mask_editor=self.mask_editor) if single else grid_keyboard(done.job_id)
        below: int | None = None
        while True:
            # The PNG when sendPhoto takes it, else a smaller form; the full PNG stays one 📄 press away.
            try:
                choice = await asyncio.to_thread(result_forms.choose, png, self.limits, below=below)
            except result_forms.NothingFits as exc:
                raise DeliveryDropped(f"job {done.job_id}: {exc}") from exc
            text = caption + _full_resolution_line(choice)
            try:
                return await call_telegram(
                    lambda form=choice.view, text=text: self._send_photo_sized(  # type: ignore[misc]
                        route, form.data, text, markup, form.ext
                    ),
                    wait_inline_s=self.wait_inline_s,
                )
            except TooLarge as exc:
                log.warning("result of job %s refused as too large (%s); sending a smaller form", done.job_id, exc)
                below = len(choice.view.data)
            except ChatMigrated as exc:
                # The group became a supergroup: same people, new chat id.
                moved = replace(route, chat_id=int(exc.new_chat_id))
                await self.routes.save(moved)
                raise DeliveryDeferred(0.0, f"chat moved to {exc.new_chat_id}") from exc
            except BadRequest as exc:
                # Telegram refused the picture as a photo for another reason (its dimensions): the file, with buttons.
                log.warning("result of job %s refused as a photo (%s); sending it as a file", done.job_id, exc)
                return await call_telegram(
                    lambda form=choice.view, text=text: self.bot.send_document(  # type: ignore[misc]
                        route.chat_id,
                        form.data,
                        filename=f"{route.job_id}.{form.ext}",
                        caption=text,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                        message_thread_id=route.thread_id,
                        reply_parameters=_reply_to(route.reply_to),
                    ),
                    wait_inline_s=self.wait_inline_s,
                )

    async def _send_photo_sized(
        self, route: Route, photo: bytes, caption: str, markup: InlineKeyboardMarkup | None, ext: str
    ) -> Message:
        """``sendPhoto``, with every way Telegram says "too large" turned into ``TooLarge``: "file is too big",
        PHOTO_SAVE_FILE_INVALID, and an HTTP 413, which python-telegram-bot raises as a ``NetworkError``."""
        try:
            return await self._send_photo(route, photo, caption, markup, ext=ext)
        except NetworkError as exc:
            if _too_large(exc):
                raise TooLarge(str(exc)) from exc
            raise

    async def _send_photo(
        self, route: Route, photo: bytes, caption: str, markup: InlineKeyboardMarkup | None, *, ext: str = "png"
    ) -> Message:
        return await self.bot.send_photo(
            route.chat_id,
            photo,
            caption=caption,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            message_thread_id=route.thread_id,
            reply_parameters=_reply_to(route.reply_to),
            filename=f"{route.job_id}.{ext}",
        )

    async def _delete(self, chat_id: int, message_id: int) -> None:
        with contextlib.suppress(TelegramError, DeliveryDeferred, DeliveryDropped):
            await call_telegram(lambda: self.bot.delete_message(chat_id, message_id), attempts=1)


class TooLarge(Exception):
    """Telegram refused an upload as too large: the next smaller form goes at once."""


_TOO_LARGE_SIGNS = ("too big", "too large", "photo_save_file_invalid", "413", "entity too large")


def _too_large(exc: NetworkError) -> bool:
    text = str(exc).lower()
    return any(sign in text for sign in _TOO_LARGE_SIGNS)


def _full_resolution_line(choice: result_forms.Choice) -> str:
    """Under a result sent in a smaller form: what the full resolution is and how to get it ("" for the PNG)."""
    if choice.is_full_png:
        return ""
    size = f"{choice.width}×{choice.height} PNG, {choice.png_bytes / 1e6:.1f} MB"
    if choice.view.label == "lossless WebP":
        return f"\n<i>full resolution: {size}, shown as lossless WebP (the same pixels)</i>"
    if choice.document is not None:
        return f"\n<i>full resolution: {size} — press 📄 Full-res file</i>"
    return f"\n<i>full resolution: {size} — too large for Telegram here; the full PNG is kept</i>"


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    # The user may have deleted their command; the result still goes to the chat.
    return ReplyParameters(message_id, allow_sending_without_reply=True) if message_id else None


def consumer_name() -> str:
    """Stable across restarts of one host/container, so its unacknowledged events come back to it."""
    return os.environ.get("IMPASTO_TELEGRAM_CONSUMER") or socket.gethostname()
