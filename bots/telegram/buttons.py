"""Button presses (``callback_query``) and Remix replies.

Everything a button needs is in its ``callback_data`` and in SQL/Redis, so a button on a message from last week,
served by a process started a minute ago, works. Render buttons answer the callback at once (the client stops
spinning) and then queue; quick buttons (❤️, details, file, settings) do their work and answer with the outcome.
"""

from __future__ import annotations

import json
import logging

from telegram import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    WebAppInfo,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from impasto.bots.i18n.actions import label as action_label
from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.locale import negotiate
from impasto.bots.i18n.panels import status_name
from impasto.bots.i18n.refusals import localize
from impasto.bots.service.delivery.core import Deferred, Gone
from impasto.bots.service.errors import PromptRefused
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView, SettingsView
from impasto.bots.telegram import panels
from impasto.bots.telegram.callback_data import (
    BadCallbackData,
    CancelButton,
    DocumentButton,
    JobButton,
    SettingsButton,
    decode,
)
from impasto.bots.telegram.calls import call_telegram
from impasto.bots.telegram.commands import USER_ERRORS, guarded, user_error_text
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.escaping import code, text
from impasto.bots.telegram.keyboards import STYLIZE_PRESETS, settings_keyboard
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.posting import Where, post_result, send_document, start_progress
from impasto.bots.telegram.replies import reply_error
from impasto.bots.telegram.requests import callback_key, message_key, requester, thread_of
from impasto.bots.telegram.review_queue import appeal_keyboard
from impasto.bots.web.links import editor_link
from impasto.queue.actions import Action
from impasto.storage.models import ACTIVE_STATUSES, CANCELLED, RUNNING

log = logging.getLogger(__name__)

REMIX_TTL_S = 24 * 3600
DOUBLE_CLICK_S = 3.0


def short_label(action: Action, index: int, locale: str = DEFAULT_LOCALE) -> str:
    row = action.row
    words = action_label(row, locale, index)
    return f"{row.emoji} {words}" if row.emoji else words


def _where(query: CallbackQuery) -> Where | None:
    message = query.message
    if message is None:
        return None  # a button on an inline-mode message: there is no chat to post in
    if not isinstance(message, Message):
        # An InaccessibleMessage (too old for Telegram to show us): its chat is known, its topic is not.
        return Where(message.chat.id, None, None)
    return Where(message.chat_id, thread_of(message), message.message_id)


async def tell(query: CallbackQuery, where: Where, line: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """One ⚠️ line in the chat, replying to the pressed message when there is one (``keyboard``: an Appeal button)."""
    try:
        await call_telegram(
            lambda: query.get_bot().send_message(
                where.chat_id,
                f"⚠️ {text(line, 500)}",
                parse_mode=ParseMode.HTML,
                message_thread_id=where.thread_id,
                reply_parameters=where.reply_parameters,
                reply_markup=keyboard,
            )
        )
    except (TelegramError, Deferred, Gone) as exc:
        log.warning("could not tell chat %s: %s", where.chat_id, exc)


class Buttons:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def pressed(self, update: Update, context: object) -> None:
        query = update.callback_query
        if query is None:
            return
        app_locale = negotiate(platform=query.from_user.language_code)
        try:
            button = decode(query.data)
        except BadCallbackData:
            await _answer(query, t("tg.not_mine", app_locale), alert=True)
            return
        chat = update.effective_chat
        message = query.message
        thread = thread_of(message) if isinstance(message, Message) else None
        if chat is None:
            await _answer(query, t("tg.chat_only", app_locale), alert=True)
            return
        who = requester(query.from_user, chat, thread)
        locale = await reply_locale(self.deps.service, who)
        if isinstance(button, SettingsButton):
            await self._settings(query, who, button, locale)
        elif isinstance(button, DocumentButton):
            await self._document(query, who, button, locale)
        elif isinstance(button, CancelButton):
            await self._cancel(query, who, button, locale)
        else:
            await self._job(query, who, button, locale)

    # ---- job buttons -----------------------------------------------------------------------------------------
    async def _job(self, query: CallbackQuery, who: Requester, button: JobButton, locale: str) -> None:
        action, service = button.action, self.deps.service
        where = _where(query)
        index = button.index or None
        if not action.renders and action is not Action.UPSCALE and action.row.where != "prompts":
            try:
                result = await service.press(who, button.job_id, action, index, idempotency_key=callback_key(query.id))
            except USER_ERRORS as exc:
                await _answer(query, localize(user_error_text(exc), locale), alert=True)
                return
            if result.kind == "favorite":
                added = result.view.favorite
                await _answer(query, t("tg.favourite_added" if added else "tg.favourite_removed", locale))
            else:
                await self._details(query, result.view, locale)
            return
        if where is None:
            await _answer(query, t("tg.chat_only", locale), alert=True)
            return
        if action.row.needs_mask:
            await self._open_editor(query, who, button, where, locale)
            return
        # A double click sends two callback queries with different ids; the second one within a few seconds is
        # answered, not queued (the service dedupes by idempotency key, and these keys differ).
        gate = f"press:{who.user_id}:{button.job_id}:{action.value}:{button.index}"
        if not await self.deps.redis.set(self.deps.key("claim", gate), "1", nx=True, px=int(DOUBLE_CLICK_S * 1000)):
            await _answer(query, t("tg.on_its_way", locale, label=short_label(action, button.index, locale)))
            return
        await _answer(query, t("tg.on_it", locale, label=short_label(action, button.index, locale)))
        try:
            await self._press(query, who, button, where, None, locale)
        except USER_ERRORS as exc:
            # A policy refusal in a group carries its Appeal button, as a command's does.
            appeal = appeal_keyboard(exc, locale) if isinstance(exc, PromptRefused) and who.guild_id else None
            await tell(query, where, localize(user_error_text(exc), locale), appeal)
        except (Deferred, Gone) as exc:
            log.warning("button reply to chat %s not sent: %s", where.chat_id, exc)

    async def _open_editor(
        self, query: CallbackQuery, who: Requester, button: JobButton, where: Where, locale: str
    ) -> None:
        """Vary (Region): the region is drawn in the web editor. In a private chat the editor opens as a Mini App
        (Telegram signs who opens it); in a group the presser gets a link of their own in a private message, since
        everyone in the group would see a link posted there."""
        web = self.deps.web
        if web is None:
            await _answer(query, t("tg.no_editor", locale), alert=True)
            return
        private = query.message is not None and query.message.chat.type == ChatType.PRIVATE
        source = str(where.reply_to) if where.reply_to is not None else None
        url = editor_link(web, who, button.job_id, button.index or None, source, webapp=private, lang=locale)
        opener = t("tg.open_editor_button", locale)
        button_to = (
            InlineKeyboardButton(opener, web_app=WebAppInfo(url)) if private else InlineKeyboardButton(opener, url=url)
        )
        text = t("tg.editor_text", locale)
        try:
            await call_telegram(
                lambda: query.get_bot().send_message(
                    where.chat_id if private else int(who.user_id),
                    text,
                    reply_markup=InlineKeyboardMarkup([[button_to]]),
                )
            )
        except Forbidden:
            # A user who never opened a private chat with the bot cannot be written to first.
            await _answer(query, t("tg.open_private", locale), alert=True)
            return
        except (Deferred, Gone) as exc:
            log.warning("region editor link for %s not sent: %s", who.user_id, exc)
        await _answer(query, t("tg.editor_open" if private else "tg.editor_sent", locale))

    async def _press(
        self,
        query: CallbackQuery,
        who: Requester,
        button: JobButton,
        where: Where,
        remix_text: str | None,
        locale: str = DEFAULT_LOCALE,
    ) -> None:
        service = self.deps.service
        key = callback_key(query.id) if remix_text is None else f"{callback_key(query.id)}:remix"
        result = await service.press(
            who, button.job_id, button.action, button.index or None, idempotency_key=key, remix_text=remix_text
        )
        bot = query.get_bot()
        if result.kind == "image":
            # U1–U4: the grid's picture again, as the service decided for this chat (a spoiler; refusals raised).
            await post_result(
                bot,
                service,
                self.deps.images,
                where,
                result.view,
                mask_editor=self.deps.web is not None,
                spoiler=result.spoiler,
            )
        elif result.kind == "remix":
            await self._ask_remix(query, who, button, where, result.view, locale)
        elif result.kind == "job" and result.ticket is not None:
            # Imagine all under /describe makes four jobs: a progress message for each.
            for ticket in result.tickets or (result.ticket,):
                view = result.view if ticket.job_id == result.view.job_id else await service.job(ticket.job_id)
                await start_progress(bot, self.deps.delivery, where, view, ticket)

    async def _cancel(self, query: CallbackQuery, who: Requester, button: CancelButton, locale: str) -> None:
        """❌ under a job in progress: its owner stops it (nothing is charged); anyone else is told it is not theirs."""
        service = self.deps.service
        try:
            before = (await service.job(button.job_id)).status
            status = await service.cancel(who, button.job_id) if before in ACTIVE_STATUSES else before
        except USER_ERRORS as exc:
            await _answer(query, localize(user_error_text(exc), locale), alert=True)
            return
        if before not in ACTIVE_STATUSES:
            await _answer(query, t("tg.already", locale, status=status_name(before, locale)))
        elif status == CANCELLED:
            # A waiting job is cancelled at once, but no worker may reach it for a while (a held one never): announce
            # its end now (at most once per job), and the progress message turns into "Cancelled".
            await self.deps.delivery.announce_cancelled(button.job_id)
            await _answer(query, t("tg.cancelled_free", locale))
        elif status == RUNNING:
            await _answer(query, t("tg.stopping", locale))
        else:
            await _answer(query, t("tg.already", locale, status=status_name(status, locale)))  # it ended meanwhile

    async def _details(self, query: CallbackQuery, view: JobView, locale: str) -> None:
        """Details go privately to whoever pressed; a user who never opened a chat with the bot is told how."""
        try:
            text_ = panels.details_text(view, locale)
            await query.get_bot().send_message(query.from_user.id, text_, parse_mode=ParseMode.HTML)
        except Forbidden:
            await _answer(query, t("tg.details_private", locale), alert=True)
            return
        await _answer(query, t("tg.details_sent", locale))

    async def _document(self, query: CallbackQuery, who: Requester, button: DocumentButton, locale: str) -> None:
        """📄 Full-res file: the picture again, as the chat has a flagged one (``repost_action``). A document has no
        spoiler: where the chat spoilers the picture, the file is refused (the photo behind its spoiler shows it)."""
        where = _where(query)
        service = self.deps.service
        try:
            view = await service.job(button.job_id)
            shown = await service.repost_action_for(who, view, button.index or None)
            service.refuse_repost(view.job_id, shown)
        except USER_ERRORS as exc:
            await _answer(query, localize(user_error_text(exc), locale), alert=True)
            return
        if shown == "spoiler":
            await _answer(query, t("repost.refusal.spoilered", locale, job=view.job_id), alert=True)
            return
        if where is None or not view.images:
            await _answer(query, t("tg.no_images", locale, job=view.job_id), alert=True)
            return
        await _answer(query, t("tg.sending_file", locale))
        try:
            await send_document(
                query.get_bot(),
                self.deps.images,
                where,
                view,
                button.index,
                max_bytes=self.deps.document_bytes,
                web=self.deps.web,
                download_s=self.deps.download_s,
            )
        except (TelegramError, FileNotFoundError, ValueError) as exc:
            log.warning("full-res file of job %s not sent: %s", view.job_id, exc)
            anchor = query.message
            if isinstance(anchor, Message):
                await reply_error(anchor, t("tg.file_failed", locale))

    # ---- remix -----------------------------------------------------------------------------------------------
    async def _ask_remix(
        self, query: CallbackQuery, who: Requester, button: JobButton, where: Where, view: JobView, locale: str
    ) -> None:
        label = short_label(button.action, button.index, locale)
        asking = t("tg.remix_ask", locale, label=text(label), job=code(view.job_id))
        prompt = f"{asking}\n{code(view.display or view.prompt, 3000)}"
        asked = await query.get_bot().send_message(
            where.chat_id,
            prompt,
            parse_mode=ParseMode.HTML,
            message_thread_id=where.thread_id,
            reply_parameters=where.reply_parameters,
            reply_markup=ForceReply(selective=True, input_field_placeholder=t("tg.remix_placeholder", locale)),
        )
        state = {"job": button.job_id, "action": button.action.value, "index": button.index, "user": who.user_id}
        await self.deps.redis.set(
            self.deps.key("remix", asked.chat_id, asked.message_id), json.dumps(state), ex=REMIX_TTL_S
        )

    async def remix_reply(self, update: Update, context: object) -> None:
        """A reply to one of our Remix questions: press the button again with the edited prompt."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.reply_to_message is None:
            return
        raw = await self.deps.redis.get(self.deps.key("remix", message.chat_id, message.reply_to_message.message_id))
        if raw is None:
            return
        state = json.loads(raw)
        if state["user"] != str(user.id):
            return  # someone else's remix question
        who = requester(user, message.chat, thread_of(message))
        button = JobButton(Action(state["action"]), state["job"], int(state["index"]))
        where = Where(message.chat_id, thread_of(message), message.message_id)
        edited = (message.text or "").strip()
        locale = await reply_locale(self.deps.service, who)
        if not edited:
            await reply_error(message, t("tg.remix_text_only", locale))
            return

        async def run() -> None:
            result = await self.deps.service.press(
                who,
                button.job_id,
                button.action,
                button.index or None,
                idempotency_key=message_key(message),
                remix_text=edited,
            )
            if result.ticket is not None:
                await start_progress(message.get_bot(), self.deps.delivery, where, result.view, result.ticket)

        await guarded(message, run(), locale)

    # ---- /settings panel -------------------------------------------------------------------------------------
    async def _settings(self, query: CallbackQuery, who: Requester, button: SettingsButton, locale: str) -> None:
        service = self.deps.service
        try:
            current = await service.settings(who)
            view = await _apply_setting(self.deps, who, current, button)
        except USER_ERRORS as exc:
            await _answer(query, localize(user_error_text(exc), locale), alert=True)
            return
        await _answer(query, t("tg.settings_saved", view.locale))
        message = query.message
        if isinstance(message, Message):
            try:
                await message.edit_text(
                    panels.settings_text(view),
                    parse_mode=ParseMode.HTML,
                    reply_markup=settings_keyboard(panels.settings_state(view), self.deps.models, locale=view.locale),
                )
            except BadRequest as exc:  # "message is not modified" when the value did not change
                log.debug("settings panel not edited: %s", exc)


async def _apply_setting(deps: Deps, who: Requester, current: SettingsView, button: SettingsButton) -> SettingsView:
    service, key, value = deps.service, button.key, button.value
    if key == "reset":
        return await service.update_settings(who, reset=True)
    if key == "raw":
        return await service.update_settings(who, raw=not current.raw)
    if key == "remix":
        return await service.update_settings(who, remix=not current.remix)
    if key == "stylize" and value in STYLIZE_PRESETS:
        preset = STYLIZE_PRESETS[value]
        if current.stylize == preset:
            return await service.update_settings(who, clear_stylize=True)
        return await service.update_settings(who, stylize=preset)
    if key == "model":
        if current.model == value:
            return await service.update_settings(who, clear_model=True)
        return await service.update_settings(who, model=value)
    if key == "mode":
        return await service.update_settings(who, mode=value)
    if key == "visibility":
        return await service.update_settings(who, visibility=value)
    if key == "language":
        return await service.set_language(who, value)
    if key == "variation" and value in ("high", "low"):
        return await service.update_settings(who, variation="high" if value == "high" else "low")
    return current


async def _answer(query: CallbackQuery, answer: str, *, alert: bool = False) -> None:
    """Answer once; a query older than Telegram keeps (about 15 minutes of waiting) cannot be answered at all."""
    try:
        await query.answer(answer[:200], show_alert=alert)
    except BadRequest as exc:
        log.debug("callback %s not answered: %s", query.id, exc)
