"""Text commands: /imagine, /settings, /prefer, /info, /fast /relax /turbo, /history, /show, /gallery, /blend (help
text)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import Forbidden

from impasto.bots.i18n.locale import served_locale
from impasto.bots.language.errors import PromptError
from impasto.bots.service.delivery.core import Deferred, Gone
from impasto.bots.service.errors import PromptRefused, ServiceError
from impasto.bots.service.requester import Requester
from impasto.bots.telegram import panels
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.describe_result import describe_keyboard, describe_text, is_describe
from impasto.bots.telegram.escaping import text as escape
from impasto.bots.telegram.keyboards import settings_keyboard
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


async def guarded(message: Message, work: Awaitable[None]) -> None:
    """Run a handler's work; errors the user caused become one line in the chat, never a traceback."""
    try:
        await work
    except PromptRefused as exc:
        if exc.refusal_id is not None and message.chat.type in GROUP_TYPES:
            locale = served_locale(message.from_user.language_code if message.from_user else None) or "en"
            await reply_refusal(message, user_error_text(exc), exc, locale)  # with its Appeal button
        else:
            await reply_error(message, user_error_text(exc))
    except USER_ERRORS as exc:
        await reply_error(message, user_error_text(exc))
    except Deferred as exc:
        log.warning("reply to chat %s deferred: %s", message.chat_id, exc)
    except Gone:
        log.info("chat %s cannot receive messages", message.chat_id)


class Commands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def imagine(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        prompt = command_args(message.text or "")
        if not prompt:
            await reply_error(message, "Write a prompt after /imagine, e.g. /imagine a lighthouse at dusk --ar 16:9")
            return
        await guarded(message, submit_imagine(self.deps, message, who, prompt, image_urls=[]))

    async def blend_without_album(self, update: Update, context: object) -> None:
        if update.effective_message is not None:
            await reply_error(
                update.effective_message,
                "Send 2–5 photos as one album with the caption /blend (optionally --dimensions portrait|square|"
                "landscape).",
            )

    async def settings(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts

        async def show() -> None:
            view = await self.deps.service.settings(who)
            await message.reply_html(
                panels.settings_text(view),
                reply_markup=settings_keyboard(panels.settings_state(view), self.deps.models),
                do_quote=True,
            )

        await guarded(message, show())

    async def mode(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        mode = (message.text or "/fast").split(maxsplit=1)[0].lstrip("/").split("@")[0].lower()

        async def switch() -> None:
            view = await self.deps.service.update_settings(who, mode=mode)
            await reply_html(message, f"Your jobs now run in <b>{view.mode}</b> mode.")

        await guarded(message, switch())

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

        async def run() -> None:
            if sub == "suffix":
                suffix = await service.prefer_suffix(who, rest)
                await reply_html(
                    message, f"Suffix {'set to <code>' + _esc(suffix) + '</code>' if suffix else 'reset'}."
                )
            elif sub == "option" and rest.split(maxsplit=1)[:1] == ["list"]:
                await reply_html(message, panels.options_text(await service.prefer_option_list(who)))
            elif sub == "option" and rest.split(maxsplit=1)[:1] == ["set"]:
                option = rest.split(maxsplit=1)[1] if len(rest.split(maxsplit=1)) > 1 else ""
                name, _, value = option.strip().partition(" ")
                if not name:
                    raise PromptError("write /prefer option set NAME VALUE, e.g. /prefer option set mine --s 250")
                options = await service.prefer_option_set(who, name, value)
                await reply_html(message, panels.options_text(options))
            elif sub == "remix":
                current = await service.settings(who)
                view = await service.update_settings(who, remix=not current.remix)
                await reply_html(message, f"Remix mode {'on' if view.remix else 'off'}.")
            else:
                await reply_error(
                    message,
                    "Use /prefer suffix TEXT, /prefer option set NAME VALUE, /prefer option list or /prefer remix",
                )

        await guarded(message, run())

    async def info(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts

        async def run() -> None:
            await reply_html(message, panels.info_text(await self.deps.service.info(who)))

        await guarded(message, run())

    async def history(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        search = command_args(message.text or "") or None

        async def run() -> None:
            text = panels.history_text(await self.deps.service.history(who, search))
            if self.deps.web is not None:
                text += "\n\n" + await send_gallery_privately(message, who, self.deps.web)
            await reply_html(message, text)

        await guarded(message, run())

    async def gallery(self, update: Update, context: object) -> None:
        """/gallery: a link to this group's public gallery (public jobs only, so the group may see it)."""
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        if self.deps.web is None:
            await reply_error(message, "The gallery needs the web front door, which this bot has not been set up with.")
            return
        if message.chat.type == ChatType.PRIVATE or who.guild_id is None:
            await reply_error(message, "The public gallery belongs to a group: send /gallery there (/history: yours).")
            return
        button = InlineKeyboardButton("🖼️ Open the public gallery", url=public_gallery_link(self.deps.web, who))

        async def run() -> None:
            await message.reply_html(
                "This group's public gallery: the jobs made public here (never stealth ones).",
                do_quote=True,
                reply_markup=InlineKeyboardMarkup([[button]]),
            )

        await guarded(message, run())

    async def show(self, update: Update, context: object) -> None:
        parts = _parts(update)
        if parts is None:
            return
        message, who = parts
        job_id = command_args(message.text or "").split(maxsplit=1)[:1]
        if not job_id:
            await reply_error(message, "Write the job id after /show, e.g. /show 3f9a0c2b1d4e")
            return

        async def run() -> None:
            view = await self.deps.service.show(who, job_id[0])
            if view.status == "done" and is_describe(view):  # a /describe: its four prompts and buttons again
                sent = await message.reply_html(
                    describe_text(view), reply_markup=describe_keyboard(view), do_quote=True
                )
                await self.deps.service.record_message(
                    view.job_id, "telegram", str(sent.chat_id), str(sent.message_id), "result"
                )
                return
            if view.status != "done" or not view.images:
                await reply_html(message, f"Job <code>{_esc(view.job_id)}</code> is {_esc(view.status)}.")
                return
            await post_result(
                message.get_bot(),
                self.deps.service,
                self.deps.images,
                where_for(message),
                view,
                mask_editor=self.deps.web is not None,
            )

        await guarded(message, run())


def _esc(value: str) -> str:
    return escape(value, 300)


async def send_gallery_privately(message: Message, who: Requester, web: WebLinkSettings) -> str:
    """The user's own gallery shows their stealth jobs too, so its link goes to their private chat with the bot,
    never to a group. Returns the line for the /history reply: where the link went, or how to let the bot write."""
    button = InlineKeyboardButton("🖼️ Open your gallery", url=gallery_link(web, who))
    try:
        await message.get_bot().send_message(
            int(who.user_id),
            "Your gallery: every job you made, stealth ones too. The link is yours alone, for an hour.",
            reply_markup=InlineKeyboardMarkup([[button]]),
        )
    except Forbidden:
        # A user who never opened a private chat with the bot cannot be written to first.
        return "🖼️ For your gallery link, open a private chat with me (tap my name, then Start) and send /history."
    if message.chat.type == ChatType.PRIVATE:
        return "🖼️ Your gallery link is in the message above."
    return "🖼️ I sent you your gallery link privately."
