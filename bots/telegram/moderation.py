"""``/mod`` in a group: its administrators moderate impasto there.

    /mod ban [12h] [reason]     (as a reply to the member's message)
    /mod unban                  (as a reply)
    /mod word add WORD…         /mod word remove WORD…      /mod words
    /mod policy [CATEGORY block|nsfw|allow|default]
    /mod nsfw on|off            (Telegram chats carry no NSFW flag: the administrators say whether this one allows it)
    /mod channel [off]          a one-time code for linking the admin chat that gets the review queue and audit feed
    /mod link CODE              (in that admin chat) link it
    /mod review                 what waits for review (re-posted there, or to you privately without a linked chat)
    /mod log [USER_ID]          recent audit rows here (or as a reply: that member's)

The caller must be the chat's creator or an administrator (``getChatMember``, asked every time: rights change). Each
verb is one call of ``bots/moderation/commands.py`` in one transaction; the answer replies to the moderator.
``/mod review`` and ``/mod log`` also work in the admin chat linked by ``/mod link`` (a private chat with the bot, an
admin group): there they answer for each group that reports to that chat and that the caller administers.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import TelegramError

from impasto.bots.i18n.catalog import t
from impasto.bots.moderation import commands as mod_commands
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.telegram import escaping
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.replies import reply_error, reply_html
from impasto.bots.telegram.requests import GROUP_TYPES, requester
from impasto.bots.telegram.review_queue import TelegramReview
from impasto.bots.web.links import LinkError, WebLinkSettings, desk_link
from impasto.queue.moderation.policy import Policy
from impasto.storage import moderation

log = logging.getLogger(__name__)
PLATFORM = "telegram"
MODERATORS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
USAGE = (
    "/mod ban [12h] [reason] · /mod unban (replying to the member) · /mod word add|remove WORD · /mod words · "
    "/mod policy [CATEGORY block|nsfw|allow|default] · /mod nsfw on|off · /mod channel [off] · /mod review · "
    "/mod log [USER_ID]"
)


class ModCommands:
    def __init__(
        self,
        service: JobService,
        policy: Policy,
        review: TelegramReview | None = None,
        web: WebLinkSettings | None = None,
    ) -> None:
        self.service = service
        self.sessions = service.sessions
        self.policy = policy
        self.review = review
        self.web = web  # the web front door: /mod desk sends the moderators' desk privately

    async def mod(self, update: Update, context: object) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.text is None:
            return
        words = message.text.split()[1:]
        locale = await reply_locale(self.service, requester(user, message.chat))
        if self.review is not None and len(words) == 2 and words[0].lower() == "link":
            # In the admin chat being linked (often a private chat with the bot): the code says which group.
            await reply_html(message, escaping.text(await self.review.link(message, user.id, words[1], locale), 500))
            return
        if self.review is not None and words and words[0].lower() in ("review", "log"):
            linked = await self.review.review.guilds_reporting_to(PLATFORM, str(message.chat_id))
            if any(group != str(message.chat_id) for group in linked):
                await self._linked(message, user.id, words, linked, locale)
                return
        if message.chat.type not in GROUP_TYPES:
            await reply_error(message, t("modcmd.tg_group_only", locale))
            return
        try:
            member = await message.get_bot().get_chat_member(message.chat_id, user.id)
        except TelegramError as exc:
            log.warning("could not check %s's rights in chat %s: %s", user.id, message.chat_id, exc)
            await reply_error(message, t("modcmd.tg_rights_unknown", locale))
            return
        if member.status not in MODERATORS:
            await reply_error(message, t("modcmd.tg_admins_only", locale))
            return
        try:
            line = await self._desk(message, user.id, words, locale) or await self._run(
                message, str(user.id), words, locale
            )
        except mod_commands.ModerationCommandError as exc:
            await reply_error(message, str(exc))
            return
        await reply_html(message, escaping.text(line, 3000))

    async def _desk(self, message: Message, user_id: int, words: list[str], locale: str) -> str | None:
        """The review queue's verbs (``review_queue.py``); None: not one of them."""
        verb = words[0].lower() if words else ""
        if verb == "desk":
            return await self._desk_link(message, user_id, locale)
        if self.review is None or verb not in ("channel", "review", "log"):
            return None
        group = str(message.chat_id)
        if verb == "channel":
            return await self.review.channel_code(message.chat_id, user_id, clear=words[1:2] == ["off"], locale=locale)
        return await self._review_or_log(message, group, user_id, words)

    async def _review_or_log(self, message: Message, group: str, user_id: int, words: list[str]) -> str:
        assert self.review is not None
        if words[0].lower() == "review":
            return await self.review.list_pending(message, group, user_id)
        target = message.reply_to_message.from_user if message.reply_to_message else None
        who = str(target.id) if target is not None else (words[1] if len(words) > 1 and words[1].isdigit() else None)
        return await self.review.log(group, who)

    async def _linked(self, message: Message, user_id: int, words: list[str], groups: list[str], locale: str) -> None:
        """``/mod review`` or ``/mod log`` in the admin chat that ``/mod link`` linked: for each group reporting here
        whose administrator the caller is (asked every time, as in the group), headed by the group when several."""
        parts: list[str] = []
        for group in groups:
            try:
                member = await message.get_bot().get_chat_member(int(group), user_id)
            except TelegramError as exc:
                log.warning("could not check %s's rights in chat %s: %s", user_id, group, exc)
                continue
            if member.status not in MODERATORS:
                continue
            line = await self._review_or_log(message, group, user_id, words)
            parts.append(t("review.tg_for_group", locale, group=group) + "\n" + line if len(groups) > 1 else line)
        if not parts:
            await reply_error(message, t("review.tg_linked_admins_only", locale))
            return
        await reply_html(message, escaping.text("\n\n".join(parts), 3000))

    async def _desk_link(self, message: Message, user_id: int, locale: str) -> str:
        """The moderators' desk, as a private message (the link acts for this administrator, in this group)."""
        if self.web is None:
            return t("service.no_desk", locale)
        who = Requester("telegram", str(user_id), guild_id=str(message.chat_id))
        try:
            url = desk_link(self.web, who, lang=locale)
        except LinkError as exc:
            return exc.message
        try:
            await message.get_bot().send_message(
                user_id,
                t("modcmd.tg_desk", locale, link=f'<a href="{escaping.text(url)}">', end="</a>"),
                parse_mode=ParseMode.HTML,
            )
        except TelegramError:
            return t("modcmd.tg_no_private", locale)
        return t("modcmd.tg_desk_sent", locale)

    async def _run(self, message: Message, moderator_key: str, words: list[str], locale: str) -> str:
        verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
        async with self.sessions() as session, session.begin():
            guild = await moderation.guild_id_for(session, PLATFORM, str(message.chat_id))
            moderator = await moderation.user_id_for(session, PLATFORM, moderator_key)
            if verb in ("ban", "unban"):
                target = message.reply_to_message.from_user if message.reply_to_message else None
                if target is None:
                    raise mod_commands.ModerationCommandError(t("modcmd.tg_reply_needed", locale, verb=verb))
                target_id = await moderation.user_id_for(session, PLATFORM, str(target.id))
                name = target.full_name or str(target.id)
                if verb == "unban":
                    return await mod_commands.unban_user(
                        session,
                        guild_id=guild,
                        moderator_id=moderator,
                        user_id=target_id,
                        user_name=name,
                        locale=locale,
                    )
                duration = rest[0] if rest and rest[0][:1].isdigit() else None
                reason = " ".join(rest[1:] if duration else rest)
                return await mod_commands.ban_user(
                    session,
                    guild_id=guild,
                    moderator_id=moderator,
                    user_id=target_id,
                    user_name=name,
                    reason=reason,
                    duration=duration,
                    locale=locale,
                )
            if verb == "word" and len(rest) >= 2 and rest[0].lower() in ("add", "remove"):
                word = " ".join(rest[1:])
                if rest[0].lower() == "add":
                    return await mod_commands.add_word(
                        session, self.policy, guild_id=guild, moderator_id=moderator, word=word, locale=locale
                    )
                return await mod_commands.remove_word(
                    session, self.policy, guild_id=guild, moderator_id=moderator, word=word, locale=locale
                )
            if verb == "words":
                return await mod_commands.list_words(session, self.policy, guild_id=guild, locale=locale)
            if verb == "policy" and len(rest) == 2:
                return await mod_commands.set_policy(
                    session,
                    self.policy,
                    guild_id=guild,
                    moderator_id=moderator,
                    category=rest[0],
                    choice=rest[1],
                    locale=locale,
                )
            if verb == "policy" and not rest:
                return await mod_commands.show_policy(session, self.policy, guild_id=guild, locale=locale)
            if verb == "nsfw" and rest and rest[0].lower() in ("on", "off"):
                allowed = rest[0].lower() == "on"
                await moderation.update_settings(session, guild, nsfw_chat=allowed)
                return t("modcmd.tg_nsfw_on" if allowed else "modcmd.tg_nsfw_off", locale)
        raise mod_commands.ModerationCommandError(t("modcmd.tg_usage", locale, usage=USAGE))
