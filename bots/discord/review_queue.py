"""The review queue and appeals on Discord: held results and appeals posted to the moderators' channel with Approve /
Reject buttons, the Appeal button under a refusal, and the audit feed (one line per moderation action).

Buttons carry their audit row (``imp:rv:ok:123``, ``imp:appeal:45``) and are ``DynamicItem``s, so any bot process
serves them after any restart. Who may press is checked on every press: Approve / Reject need Manage Messages in the
item's own server; Appeal, the refused user. Decisions are ``review.Review``'s, taken once in SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from typing import Any, Protocol, cast

import discord
from discord import ui
from redis.asyncio import Redis

from impasto.bots.discord import texts
from impasto.bots.discord.language import reply_locale
from impasto.bots.discord.surface import PLATFORM, finished, shows_grid
from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.moderation.feed import FEED_EVERY_S, AuditFeed
from impasto.bots.moderation.review import Decision, Review, ReviewItem, follow_decision, item_text
from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.errors import PromptRefused
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import JobView
from impasto.queue.keys import DEFAULT, Namespace
from impasto.queue.moderation.policy import Policy
from impasto.storage.models import HELD
from impasto.storage.moderation import LogRow

log = logging.getLogger(__name__)
_Interaction = discord.Interaction[Any]
REVIEW_TEMPLATE = r"imp:rv:(?P<verb>ok|no):(?P<id>[0-9]{1,18})"
APPEAL_TEMPLATE = r"imp:appeal:(?P<id>[0-9]{1,18})"


async def locale_of(interaction: _Interaction) -> str:
    """The presser's reply language (``language.reply_locale``)."""
    return await reply_locale(interaction)


class HasReview(Protocol):
    review: DiscordReview | None


def _review(interaction: _Interaction) -> DiscordReview | None:
    return cast(HasReview, interaction.client).review


class ReviewButton(ui.DynamicItem[ui.Button[Any]], template=REVIEW_TEMPLATE):
    def __init__(self, event_id: int, approve: bool, *, label: str) -> None:
        style = discord.ButtonStyle.success if approve else discord.ButtonStyle.danger
        verb = "ok" if approve else "no"
        super().__init__(ui.Button(label=label, style=style, custom_id=f"imp:rv:{verb}:{event_id}"))
        self.event_id = event_id
        self.approve = approve

    @classmethod
    async def from_custom_id(
        cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ReviewButton:
        approve = match["verb"] == "ok"
        return cls(int(match["id"]), approve, label="Approve" if approve else "Reject")

    async def callback(self, interaction: _Interaction) -> None:
        review = _review(interaction)
        if review is not None:
            await review.on_decision(interaction, self.event_id, approve=self.approve)


class AppealButton(ui.DynamicItem[ui.Button[Any]], template=APPEAL_TEMPLATE):
    def __init__(self, refusal_id: int, *, label: str = "Appeal") -> None:
        super().__init__(
            ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=f"imp:appeal:{refusal_id}")
        )
        self.refusal_id = refusal_id

    @classmethod
    async def from_custom_id(
        cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> AppealButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: _Interaction) -> None:
        review = _review(interaction)
        if review is not None:
            await review.on_appeal(interaction, self.refusal_id)


REVIEW_ITEMS: tuple[type[ui.DynamicItem[Any]], ...] = (ReviewButton, AppealButton)


def appeal_view(refusal: PromptRefused, locale: str) -> ui.View | None:
    """The Appeal button under a policy refusal in a server (a ban's refusal carries no refusal row)."""
    if refusal.refusal_id is None:
        return None
    view = ui.View(timeout=None)
    view.add_item(AppealButton(refusal.refusal_id, label=t("mod.appeal.button", locale)))
    return view


def decision_view(item: ReviewItem, locale: str = "en") -> ui.View:
    view = ui.View(timeout=None)
    view.add_item(ReviewButton(item.id, True, label=t("review.approve", locale)))
    view.add_item(
        ReviewButton(item.id, False, label=t("review.reject" if item.kind == HELD else "review.deny", locale))
    )
    return view


class DiscordReview:
    """One per bot process: posts review items and feed lines, answers the review buttons."""

    def __init__(
        self,
        client: discord.Client,
        service: JobService,
        delivery: Delivery,
        policy: Policy,
        redis: Redis,
        *,
        ns: Namespace = DEFAULT,
        feed_every_s: float = FEED_EVERY_S,
    ) -> None:
        self.client = client
        self.service = service
        self.delivery = delivery
        self.redis = redis
        self.ns = ns
        self.feed_every_s = feed_every_s
        self.review = Review(service, policy, release=delivery.release_held)
        self.feed = AuditFeed(
            self.review, redis, PLATFORM, self.post_line, ns=ns, every_s=feed_every_s, on_row=self.follow
        )

    # -- posting ---------------------------------------------------------------------------------------------------

    async def on_held(self, view: JobView) -> None:
        """The delivery core held a result: post it to the moderators' channel, when the server has one."""
        found = await self.review.held_to_post(PLATFORM, view)
        if found is not None:
            channel, item = found
            await self.post_item(self.client.get_partial_messageable(int(channel)), item)

    async def post_item(self, target: discord.abc.Messageable | discord.Webhook, item: ReviewItem) -> None:
        """The item with its buttons: a held result's picture behind a spoiler, an appeal's prompt as text."""
        files: list[discord.File] = []
        if item.kind == HELD and item.job_id is not None:
            files = await self._spoiler_files(item.job_id)
        locale = await self.review.server_locale(PLATFORM, item.guild)
        content = texts.escape(item_text(item, locale))[: texts.MAX_MESSAGE]
        kwargs: dict[str, Any] = {"content": content, "files": files, "view": decision_view(item, locale)}
        if isinstance(target, discord.Webhook):
            await target.send(ephemeral=True, allowed_mentions=texts.NO_MENTIONS, **kwargs)
        else:
            await target.send(allowed_mentions=texts.NO_MENTIONS, **kwargs)

    async def _spoiler_files(self, job_id: str) -> list[discord.File]:
        view = await self.service.job(job_id)
        pictures = await asyncio.to_thread(finished, self.service.images, view)
        png = pictures.grid_png if shows_grid(view) and pictures.grid_png else None
        if png is None and pictures.images_png:
            png = pictures.images_png[0]
        if png is None:
            return []
        return [discord.File(io.BytesIO(png), filename=f"SPOILER_review_{job_id}.png", spoiler=True)]

    # -- presses ---------------------------------------------------------------------------------------------------

    async def on_decision(self, interaction: _Interaction, event_id: int, *, approve: bool) -> None:
        locale = await locale_of(interaction)
        item = await self.review.item(event_id)
        if item is None or interaction.guild_id is None:
            await _private(interaction, t("mod.review.unknown", locale))
            return
        if not await self._moderates(interaction, item):
            await _private(interaction, t("mod.review.not_moderator", locale))
            return
        await interaction.response.defer()
        decision = await self.review.decide(event_id, PLATFORM, str(interaction.user.id), approve=approve)
        if decision.outcome in ("already", "unknown"):
            await interaction.followup.send(
                texts.refusal(translate_line(decision.line, locale)), ephemeral=True, allowed_mentions=texts.NO_MENTIONS
            )
            return
        await self._mark(interaction, decision)
        await self._tell_user(decision)

    async def _moderates(self, interaction: _Interaction, item: ReviewItem) -> bool:
        """Manage Messages, in the item's own server (a button copied elsewhere does not carry a server's rights)."""
        if item.platform != PLATFORM or item.guild is None or str(interaction.guild_id) != item.guild:
            return False
        return bool(interaction.permissions.manage_messages)

    async def _mark(self, interaction: _Interaction, decision: Decision) -> None:
        """The review message says what was decided, by whom; its buttons go."""
        if interaction.message is None:
            return
        locale = await self.review.server_locale(PLATFORM, str(interaction.guild_id) if interaction.guild_id else None)
        verb = t("review.approved" if decision.outcome == "approved" else "review.rejected", locale)
        by = t("review.by", locale, verb=f"**{verb}**", who=texts.mention(str(interaction.user.id)))
        line = f"{interaction.message.content}\n{by}"
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content=line[: texts.MAX_MESSAGE], view=None, allowed_mentions=texts.NO_MENTIONS
            )

    async def _tell_user(self, decision: Decision) -> None:
        """An appeal's asker is told by direct message (a held result's message says it itself)."""
        told = await self.review.asker_answer(decision, "discord", self.delivery)
        if told is None:
            return
        item, text = told
        if item.user is None:
            return
        try:
            dm = await self.client.create_dm(discord.Object(int(item.user)))
            await dm.send(texts.escape(text), allowed_mentions=texts.NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not tell user %s about their appeal: %s", item.user, exc)

    async def on_appeal(self, interaction: _Interaction, refusal_id: int) -> None:
        locale = await locale_of(interaction)
        message = interaction.message
        chat = str(interaction.channel_id or "")
        item = await self.review.appeal(
            refusal_id,
            PLATFORM,
            str(interaction.user.id),
            chat_id=chat,
            message_id=str(message.id) if message is not None else "0",
        )
        if item is None:
            await _private(interaction, texts.refusal(t("mod.appeal.already", locale)))
            return
        # The refusal loses its button (once per refusal) and says the appeal is on its way.
        content = f"{message.content if message is not None else ''}\n{t('mod.appeal.sent', locale)}".strip()
        await interaction.response.edit_message(content=content, view=None, allowed_mentions=texts.NO_MENTIONS)
        channel = await self.review.channel(PLATFORM, item.guild)
        if channel is not None:
            await self.post_item(self.client.get_partial_messageable(int(channel)), item)

    # -- /mod review, /mod log ----------------------------------------------------------------------------------------

    async def list_pending(self, interaction: _Interaction, guild: str) -> None:
        """What waits here; with no moderators' channel, each item is re-posted to the moderator privately."""
        items = await self.review.pending(PLATFORM, guild)
        channel = await self.review.channel(PLATFORM, guild)
        locale = await locale_of(interaction)
        if not items:
            await interaction.edit_original_response(content=t("review.nothing", locale))
            return
        lines = [texts.escape(item_text(i, locale))[:300] for i in items]
        where = (
            t("review.where_channel", locale, channel=f"<#{channel}>") if channel else t("review.where_private", locale)
        )
        head = t("review.waiting", locale, count=len(items), where=where)
        await interaction.edit_original_response(
            content="\n".join([head, *lines])[: texts.MAX_MESSAGE], allowed_mentions=texts.NO_MENTIONS
        )
        if channel is None:
            for item in items:
                await self.post_item(interaction.followup, item)

    # -- the audit feed ----------------------------------------------------------------------------------------------

    async def follow(self, row: LogRow) -> None:
        await follow_decision(row, self.delivery, t("mod.held.rejected", "en"))

    async def post_line(self, channel: str, line: str) -> None:
        target = self.client.get_partial_messageable(int(channel))
        await target.send(texts.escape(line)[:400], allowed_mentions=texts.NO_MENTIONS)


async def _private(interaction: _Interaction, text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)
