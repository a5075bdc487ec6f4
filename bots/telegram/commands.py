"""Text commands: /imagine, /settings, /prefer, /info, /fast /relax /turbo, /history, /show, /gallery, /blend (help
text)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import Forbidden, TelegramError

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.locale import negotiate
from impasto.bots.i18n.panels import status_name
from impasto.bots.i18n.refusals import localize
from impasto.bots.language.errors import PromptError
from impasto.bots.service.delivery.core import Deferred, Gone
from impasto.bots.service.errors import PromptRefused, ServiceError
from impasto.bots.service.requester import Requester
from impasto.bots.telegram import panels
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.describe_result import describe_keyboard, describe_text, is_describe
from impasto.bots.telegram.escaping import text as escape
from impasto.bots.telegram.keyboards import settings_keyboard
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.posting import Where, post_result, start_progress
from impasto.bots.telegram.replies import reply_error, reply_html
from impasto.bots.telegram.requests import GROUP_TYPES, message_key, requester, thread_of
from impasto.bots.telegram.review_queue import reply_refusal
from impasto.bots.web.links import WebLinkSettings, gallery_link, public_gallery_link
from impasto.queue import metrics

log = logging.getLogger(__name__)

USER_ERRORS = (PromptError, ServiceError)


def user_error_text(exc: Exception) -> str:
    """The refusal's one line (every refusal a user sees passes here: it is counted by its kind)."""
    metrics.refused_by(exc)
    return str(getattr(exc, "message", None) or exc)


def _parts(update: Update) -> tuple[Message, Requester] | None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None:
        return None
    return message, requester(user, update.effective_chat, thread_of(message))


def command_args(text: str) -> str:
    """Everything after ``/command`` or ``/command@bot``, keeping the user's spacing and newlines inside."""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def where_for(message: Message) -> Where:
    return Where(message.chat_id, thread_of(message), message.message_id)


async def submit_imagine(deps: Deps, message: Message, who: Requester, prompt: str, *, image_urls: list[str]) -> None:
    """Queue an /imagine (text, or photos as store links in front) and post a progress message per job it made."""
    service = deps.service
    tickets = await service.imagine(who, prompt, image_urls=image_urls, idempotency_key=message_key(message))
    for ticket in tickets:
        view = await service.job(ticket.job_id)
        await start_progress(message.get_bot(), deps.delivery, where_for(message), view, ticket)


async def guarded(message: Message, work: Awaitable[None], locale: str | None = None) -> None:
    """Run a handler's work; errors the user caused become one line in the chat, never a traceback, in ``locale``
    (the user's reply language; their app's when not given)."""
    if locale is None:
        locale = negotiate(platform=message.from_user.language_code if message.from_user else None)
    try:
        await work
    except PromptRefused as exc:
        line = localize(user_error_text(exc), locale)
        if exc.refusal_id is not None and message.chat.type in GROUP_TYPES:
            await reply_refusal(message, line, exc, locale)  # with its Appeal button
        else:
            await reply_error(message, line)
    except USER_ERRORS as exc:
        await reply_error(message, localize(user_error_text(exc), locale))
    except Deferred as exc:
        log.warning("reply to chat %s deferred: %s", message.chat_id, exc)
    except Gone:
        log.info("chat %s cannot receive messages", message.chat_id)


class Commands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def locale(self, who: Requester) -> str:
        """The language to answer ``who`` in (their /settings choice, their app's, their group's default)."""
        return await reply_locale(self.deps.service, who)

    async def imagine(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        locale = await self.locale(who)
        prompt = command_args(message.text or "")
        if not prompt:
            await reply_error(message, t("tg.write_prompt", locale))
            return
        await guarded(message, submit_imagine(self.deps, message, who, prompt, image_urls=[]), locale)

    async def blend_without_album(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is not None:
            await reply_error(parts[0], t("tg.blend_album", await self.locale(parts[1])))

    async def settings(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts

        async def show() -> None:
            view = await self.deps.service.settings(who)
            await message.reply_html(
                panels.settings_text(view),
                reply_markup=settings_keyboard(panels.settings_state(view), self.deps.models, locale=view.locale),
                do_quote=True,
            )

        await guarded(message, show(), await self.locale(who))

    async def mode(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        mode = (message.text or "/fast").split(maxsplit=1)[0].lstrip("/").split("@")[0].lower()

        async def switch() -> None:
            view = await self.deps.service.update_settings(who, mode=mode)
            name = t(f"mode.{view.mode}", view.locale) if view.mode in ("fast", "relax", "turbo") else view.mode
            await reply_html(message, t("tg.mode_now", view.locale, mode=escape(name)))

        await guarded(message, switch(), await self.locale(who))

    async def prefer(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        args = command_args(message.text or "")
        words = args.split(maxsplit=1)
        sub = words[0].lower() if words else ""
        rest = words[1] if len(words) > 1 else ""
        service = self.deps.service
        locale = await self.locale(who)

        async def run() -> None:
            if sub == "suffix":
                suffix = await service.prefer_suffix(who, rest)
                said = t("tg.suffix_set", locale, suffix=_esc(suffix)) if suffix else t("tg.suffix_reset", locale)
                await reply_html(message, said)
            elif sub == "option" and rest.split(maxsplit=1)[:1] == ["list"]:
                await reply_html(message, panels.options_text(await service.prefer_option_list(who), locale))
            elif sub == "option" and rest.split(maxsplit=1)[:1] == ["set"]:
                option = rest.split(maxsplit=1)[1] if len(rest.split(maxsplit=1)) > 1 else ""
                name, _, value = option.strip().partition(" ")
                if not name:
                    raise PromptError(t("refusal.option_set_usage", DEFAULT_LOCALE))
                options = await service.prefer_option_set(who, name, value)
                await reply_html(message, panels.options_text(options, locale))
            elif sub == "remix":
                current = await service.settings(who)
                view = await service.update_settings(who, remix=not current.remix)
                await reply_html(message, t("tg.remix_on" if view.remix else "tg.remix_off", locale))
            else:
                await reply_error(message, t("tg.prefer_usage", locale))

        await guarded(message, run(), locale)

    async def info(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts

        locale = await self.locale(who)

        async def run() -> None:
            await reply_html(message, panels.info_text(await self.deps.service.info(who), locale))

        await guarded(message, run(), locale)

    async def history(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        search = command_args(message.text or "") or None
        locale = await self.locale(who)

        async def run() -> None:
            text = panels.history_text(await self.deps.service.history(who, search), locale)
            if self.deps.web is not None:
                text += "\n\n" + await send_gallery_privately(message, who, self.deps.web, locale)
            await reply_html(message, text)

        await guarded(message, run(), locale)

    async def gallery(self, update: Update, context: object) -> None:
        """/gallery: a link to this group's public gallery (public jobs only, so the group may see it)."""
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        locale = await self.locale(who)
        if self.deps.web is None:
            await reply_error(message, t("tg.gallery_no_web", locale))
            return
        if message.chat.type == ChatType.PRIVATE or who.guild_id is None:
            await reply_error(message, t("tg.gallery_group_only", locale))
            return
        link = public_gallery_link(self.deps.web, who, lang=locale)
        button = InlineKeyboardButton(t("tg.gallery_button", locale), url=link)

        async def run() -> None:
            await message.reply_html(
                t("tg.gallery_text", locale), do_quote=True, reply_markup=InlineKeyboardMarkup([[button]])
            )

        await guarded(message, run(), locale)

    async def language(self, update: Update, context: object) -> None:
        """/language English|中文|auto in a group: its administrators set the group's default reply language (for
        members who chose none in /settings and whose app's language impasto does not speak)."""
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        locale = await self.locale(who)
        if message.chat.type not in GROUP_TYPES or who.guild_id is None:
            await reply_error(message, t("tg.language_group_only", locale))
            return
        wanted = command_args(message.text or "")
        if not wanted:
            await reply_error(message, t("tg.language_usage", locale))
            return
        try:
            member = await message.get_bot().get_chat_member(message.chat_id, int(who.user_id))
        except TelegramError as exc:
            log.warning("could not check %s's rights in chat %s: %s", who.user_id, message.chat_id, exc)
            await reply_error(message, t("tg.language_admins", locale))
            return
        if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
            await reply_error(message, t("tg.language_admins", locale))
            return
        guild_id = who.guild_id

        async def run() -> None:
            group = await self.deps.service.set_server_language("telegram", guild_id, wanted, locale=locale)
            if group.locale is None:
                await reply_html(message, t("tg.language_auto", await self.locale(who)))
            else:
                name = t(f"language.{group.locale}", group.locale)
                await reply_html(message, escape(t("tg.language_set", await self.locale(who), language=name)))

        await guarded(message, run(), locale)

    async def show(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        job_id = command_args(message.text or "").split(maxsplit=1)[:1]
        locale = await self.locale(who)
        if not job_id:
            await reply_error(message, t("tg.show_usage", locale))
            return

        async def run() -> None:
            shown = await self.deps.service.show(who, job_id[0])
            view = shown.view
            if view.status == "done" and is_describe(view):  # a /describe: its four prompts and buttons again
                sent = await message.reply_html(
                    describe_text(view), reply_markup=describe_keyboard(view), do_quote=True
                )
                await self.deps.service.record_message(
                    view.job_id, "telegram", str(sent.chat_id), str(sent.message_id), "result"
                )
                return
            if view.status != "done" or not view.images:
                status = _esc(status_name(view.status, locale))
                await reply_html(message, t("tg.show_not_done", locale, job=_esc(view.job_id), status=status))
                return
            await post_result(
                message.get_bot(),
                self.deps.service,
                self.deps.images,
                where_for(message),
                view,
                mask_editor=self.deps.web is not None,
                spoiler=shown.spoiler,
            )

        await guarded(message, run(), locale)


def _esc(value: str) -> str:
    return escape(value, 300)


async def send_gallery_privately(
    message: Message, who: Requester, web: WebLinkSettings, locale: str = DEFAULT_LOCALE
) -> str:
    """The user's own gallery shows their stealth jobs too, so its link goes to their private chat with the bot,
    never to a group. Returns the line for the /history reply: where the link went, or how to let the bot write."""
    button = InlineKeyboardButton(t("tg.my_gallery_button", locale), url=gallery_link(web, who, lang=locale))
    try:
        await message.get_bot().send_message(
            int(who.user_id), t("tg.my_gallery_text", locale), reply_markup=InlineKeyboardMarkup([[button]])
        )
    except Forbidden:
        # A user who never opened a private chat with the bot cannot be written to first.
        return t("tg.gallery_open_private", locale)
    if message.chat.type == ChatType.PRIVATE:
        return t("tg.gallery_above", locale)
    return t("tg.gallery_sent", locale)
