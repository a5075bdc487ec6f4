"""The review queue and appeals on Telegram: a group's linked admin chat, held results posted there as spoiler photos
with Approve / Reject, the Appeal button under a refusal, the audit feed, and ``/mod channel|link|review|log``.

Linking: ``/mod channel`` in the group (its administrators) answers with a one-time code, valid ten minutes; the same
administrator sends ``/mod link CODE`` from the chat that is to receive the queue (a private chat with the bot, or an
admin group where they are an administrator too). Who may press Approve / Reject is asked of Telegram on every press:
an administrator of the item's group. Callback data carries the audit row (``rv:ok:123``, ``ap:45``): any process
serves any press after any restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets

from redis.asyncio import Redis
from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import TelegramError

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.locale import negotiate
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.moderation.feed import AuditFeed
from impasto.bots.moderation.review import Decision, Review, ReviewItem, follow_decision, item_text, log_text
from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.errors import PromptRefused
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import JobView
from impasto.bots.telegram import escaping
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.replies import reply_html
from impasto.bots.telegram.requests import requester
from impasto.queue.keys import DEFAULT, Namespace
from impasto.queue.moderation.policy import Policy
from impasto.storage.models import HELD
from impasto.storage.moderation import LogRow

log = logging.getLogger(__name__)
PLATFORM = "telegram"
MODERATORS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
CALLBACK_PATTERN = r"^(rv:(ok|no)|ap):[0-9]{1,18}$"
_REVIEW = re.compile(r"rv:(?P<verb>ok|no):(?P<id>[0-9]{1,18})")
_APPEAL = re.compile(r"ap:(?P<id>[0-9]{1,18})")
LINK_TTL_S = 600


def appeal_keyboard(refusal: PromptRefused, locale: str) -> InlineKeyboardMarkup | None:
    if refusal.refusal_id is None:
        return None
    button = InlineKeyboardButton(t("mod.appeal.button", locale), callback_data=f"ap:{refusal.refusal_id}")
    return InlineKeyboardMarkup([[button]])


def decision_keyboard(item: ReviewItem, locale: str = "en") -> InlineKeyboardMarkup:
    no = t("review.reject" if item.kind == HELD else "review.deny", locale)
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t("review.approve", locale), callback_data=f"rv:ok:{item.id}"),
                InlineKeyboardButton(no, callback_data=f"rv:no:{item.id}"),
            ]
        ]
    )


def _chat(channel: str) -> int:
    return int(channel.partition(":")[0])


class TelegramReview:
    def __init__(
        self,
        bot: Bot,
        service: JobService,
        delivery: Delivery,
        policy: Policy,
        redis: Redis,
        *,
        ns: Namespace = DEFAULT,
    ) -> None:
        self.bot = bot
        self.service = service
        self.delivery = delivery
        self.redis = redis
        self.ns = ns
        self.review = Review(service, policy, release=delivery.release_held)
        self.feed = AuditFeed(self.review, redis, PLATFORM, self.post_line, ns=ns, on_row=self.follow)

    def _key(self, *parts: object) -> str:
        return self.ns.prefix + "telegram:modlink:" + ":".join(str(p) for p in parts)

    # -- posting ---------------------------------------------------------------------------------------------------

    async def on_held(self, view: JobView) -> None:
        """The delivery core held a result: post it to the group's linked admin chat, when it has one."""
        found = await self.review.held_to_post(PLATFORM, view)
        if found is not None:
            channel, item = found
            await self.post_item(_chat(channel), item)

    async def post_item(self, chat: int, item: ReviewItem) -> None:
        locale = await self.review.server_locale(PLATFORM, item.guild)
        caption = escaping.text(item_text(item, locale), 900)
        png = await self._picture(item) if item.kind == HELD else None
        if png is not None:
            await self.bot.send_photo(
                chat,
                png,
                caption=caption,
                parse_mode=ParseMode.HTML,
                has_spoiler=True,
                reply_markup=decision_keyboard(item, locale),
            )
        else:
            await self.bot.send_message(
                chat, caption, parse_mode=ParseMode.HTML, reply_markup=decision_keyboard(item, locale)
            )

    async def _picture(self, item: ReviewItem) -> bytes | None:
        if item.job_id is None:
            return None
        view = await self.service.job(item.job_id)
        grid = view.image(0)
        chosen = grid if grid is not None else (view.images[0] if view.images else None)
        if chosen is None:
            return None
        return await asyncio.to_thread(self.service.images.get, chosen.key)

    async def follow(self, row: LogRow) -> None:
        await follow_decision(row, self.delivery, t("mod.held.rejected", "en"))

    async def post_line(self, channel: str, line: str) -> None:
        await self.bot.send_message(_chat(channel), escaping.text(line, 400), parse_mode=ParseMode.HTML)

    # -- presses ---------------------------------------------------------------------------------------------------

    async def pressed(self, update: Update, context: object) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        chat = query.message.chat if query.message is not None else None
        if chat is not None:
            locale = await reply_locale(self.service, requester(query.from_user, chat))
        else:
            locale = negotiate(platform=query.from_user.language_code)
        review = _REVIEW.fullmatch(query.data)
        if review is not None:
            await self._decide(query, int(review["id"]), review["verb"] == "ok", locale)
            return
        appeal = _APPEAL.fullmatch(query.data)
        if appeal is not None:
            await self._appeal(query, int(appeal["id"]), locale)

    async def _moderates(self, item: ReviewItem, user_id: int) -> bool:
        """An administrator of the item's group, asked now (rights change; a forwarded button carries none)."""
        if item.platform != PLATFORM or item.guild is None:
            return False
        try:
            member = await self.bot.get_chat_member(int(item.guild), user_id)
        except TelegramError as exc:
            log.warning("could not check %s's rights in chat %s: %s", user_id, item.guild, exc)
            return False
        return member.status in MODERATORS

    async def _decide(self, query: CallbackQuery, event_id: int, approve: bool, locale: str) -> None:
        item = await self.review.item(event_id)
        if item is None:
            await _answer(query, t("mod.review.unknown", locale))
            return
        if not await self._moderates(item, query.from_user.id):
            await _answer(query, t("mod.review.not_moderator", locale))
            return
        decision = await self.review.decide(event_id, PLATFORM, str(query.from_user.id), approve=approve)
        line = translate_line(decision.line, locale)
        if decision.outcome in ("already", "unknown"):
            await _answer(query, line)
            return
        await _answer(query, line, alert=False)
        await self._mark(query, decision)
        await self._tell_user(decision)

    async def _mark(self, query: CallbackQuery, decision: Decision) -> None:
        message = query.message
        if not isinstance(message, Message):
            return
        item = decision.item
        locale = await self.review.server_locale(PLATFORM, item.guild if item is not None else None)
        verb = t("review.approved" if decision.outcome == "approved" else "review.rejected", locale)
        who = escaping.user_link(query.from_user.id, query.from_user.full_name)
        by = t("review.by", locale, verb=f"<b>{escaping.text(verb)}</b>", who=who)
        try:
            if message.photo:
                base = escaping.text(message.caption or "", 800)
                await message.edit_caption(f"{base}\n{by}", parse_mode=ParseMode.HTML)
            else:
                base = escaping.text(message.text or "", 3500)
                await message.edit_text(f"{base}\n{by}", parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.info("could not mark review message %s: %s", message.message_id, exc)

    async def _tell_user(self, decision: Decision) -> None:
        """An appeal's asker is told in reply to the refusal (a held result's message says it itself)."""
        told = await self.review.asker_answer(decision, "telegram", self.delivery)
        if told is None:
            return
        item, text = told
        where = item.refusal_message
        if where is None:
            return
        chat, message_id = where
        try:
            await self.bot.send_message(
                _chat(chat),
                escaping.text(text, 500),
                parse_mode=ParseMode.HTML,
                reply_parameters=ReplyParameters(int(message_id), allow_sending_without_reply=True),
            )
        except TelegramError as exc:
            log.info("could not tell the appellant in chat %s: %s", chat, exc)

    async def _appeal(self, query: CallbackQuery, refusal_id: int, locale: str) -> None:
        message = query.message
        if not isinstance(message, Message):
            return
        item = await self.review.appeal(
            refusal_id,
            PLATFORM,
            str(query.from_user.id),
            chat_id=str(message.chat_id),
            message_id=str(message.message_id),
        )
        if item is None:
            await _answer(query, t("mod.appeal.already", locale))
            return
        await _answer(query, t("mod.appeal.sent", locale), alert=False)
        try:
            await message.edit_reply_markup(reply_markup=None)  # once per refusal
        except TelegramError as exc:
            log.info("could not take the Appeal button off message %s: %s", message.message_id, exc)
        channel = await self.review.channel(PLATFORM, item.guild)
        if channel is not None:
            await self.post_item(_chat(channel), item)

    # -- /mod channel, link, review, log ---------------------------------------------------------------------------

    async def channel_code(self, group: int, user_id: int, *, clear: bool, locale: str = "en") -> str:
        if clear:
            await self.review.set_channel(PLATFORM, str(group), str(user_id), None)
            return t("modcmd.channel_cleared", locale)
        code = secrets.token_hex(4)
        await self.redis.set(self._key(code), f"{group}:{user_id}", ex=LINK_TTL_S)
        return t("review.tg_link_code", locale, code=code)

    async def link(self, message: Message, user_id: int, code: str, locale: str = "en") -> str:
        raw = await self.redis.get(self._key(code)) if re.fullmatch(r"[0-9a-f]{8}", code) else None
        if raw is None:
            return t("review.tg_code_unknown", locale)
        group, _, maker = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
        if maker != str(user_id):
            return t("review.tg_code_not_yours", locale)
        if not await self.redis.delete(self._key(code)):
            return t("review.tg_code_unknown", locale)  # used meanwhile
        try:
            member = await self.bot.get_chat_member(int(group), user_id)
            admin_here = (
                message.chat.type == "private"
                or (await self.bot.get_chat_member(message.chat_id, user_id)).status in MODERATORS
            )
        except TelegramError as exc:
            log.warning("could not check %s's rights for linking: %s", user_id, exc)
            return t("modcmd.tg_rights_unknown", locale)
        if member.status not in MODERATORS or not admin_here:
            return t("review.tg_link_admins", locale)
        await self.review.set_channel(PLATFORM, group, str(user_id), str(message.chat_id))
        return t("review.tg_linked", locale)

    async def list_pending(self, message: Message, group: str, user_id: int) -> str:
        items = await self.review.pending(PLATFORM, group)
        locale = await self.review.server_locale(PLATFORM, group)
        if not items:
            return t("review.nothing", locale)
        channel = await self.review.channel(PLATFORM, group)
        target = _chat(channel) if channel is not None else user_id  # no linked chat: to the moderator privately
        for item in items:
            try:
                await self.post_item(target, item)
            except TelegramError as exc:
                log.info("could not re-post review item %s to %s: %s", item.id, target, exc)
        where = t("review.tg_where_linked" if channel is not None else "review.tg_where_private", locale)
        listed = "; ".join(item_text(i, locale)[:120] for i in items)
        return t("review.tg_waiting", locale, count=len(items), where=where, items=listed)

    async def log(self, group: str, user: str | None) -> str:
        return log_text(
            await self.review.log(PLATFORM, group, user=user), await self.review.server_locale(PLATFORM, group)
        )


async def _answer(query: CallbackQuery, text: str, *, alert: bool = True) -> None:
    try:
        await query.answer(text[:200], show_alert=alert)
    except TelegramError as exc:
        log.debug("callback %s not answered: %s", query.id, exc)


async def reply_refusal(message: Message, line: str, refusal: PromptRefused, locale: str) -> None:
    """A policy refusal in a group, with its Appeal button."""
    keyboard = appeal_keyboard(refusal, locale)
    text = f"⚠️ {escaping.text(line, 500)}"
    try:
        await message.reply_html(text, do_quote=True, reply_markup=keyboard)
    except TelegramError:
        await reply_html(message, text)
