"""The moderators' review queue and appeals, platform-neutral: held results and appealed refusals waiting for a yes or
a no, the moderators' channel they are posted to, and the audit log they read.

Adapters (Discord, Telegram, the web desk) check that the presser moderates the item's server, then call ``decide``.
A decision is taken once, in SQL (``storage.moderation.decide`` locks the item's row): two moderators pressing at once
get one outcome, the second is told it was already decided. What follows a decision:

- a held result approved → ``release`` (the platform's ``Delivery.release_held``) posts it where it was asked;
- a held result rejected → nothing is posted; the adapter tells the user in one line;
- an appeal approved → the refused request is made again as it was asked (``JobService.rerun`` of the request its
  refusal kept, ``bots/service/replay.py``: an /imagine with its image prompts, a /blend, a button with its Remix
  edit, in the same place — its NSFW flag too), charged normally, with the prompt policy waived for exactly that
  request (``admission_check.waive_policy``; bans still apply); a refusal kept before requests were (or whose request
  was purged with its evidence) runs its prompt as an /imagine. Its message opens as a reply to the refusal (the
  message index's ``reply_to`` row, as web-born jobs do);
- an appeal denied → the adapter tells the user.

Everything is audited: the hold, the appeal, the decision (who, when, which job), a channel change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.language.errors import PromptError
from impasto.bots.moderation.admission_check import waive_policy
from impasto.bots.service.delivery.core import REPLY_TO, Delivery, reply_to_row
from impasto.bots.service.errors import ServiceError
from impasto.bots.service.jobs import JobService
from impasto.bots.service.replay import loads, recorded
from impasto.bots.service.requester import Platform, Requester
from impasto.bots.service.views import JobView
from impasto.queue.moderation.policy import Policy
from impasto.storage import moderation as mod
from impasto.storage.models import APPEAL, APPROVED, CHANNEL_SET, HELD, REJECTED

log = logging.getLogger(__name__)

#: ``Delivery.release_held``: post a held result where it was asked.
Release = Callable[[str], Awaitable[bool]]
Outcome = Literal["approved", "rejected", "already", "unknown"]
_MESSAGE_NOTE = "message "  # an appeal's note names the refusal's message: "message CHAT:ID"


@dataclass(frozen=True)
class ReviewItem:
    """A held result or an appeal, as a moderator sees it (``prompt`` is None once its evidence was purged)."""

    id: int
    kind: str  # HELD | APPEAL
    platform: str
    guild: str | None  # the platform guild id
    user: str | None  # the asker's platform user id
    job_id: str | None
    channel_id: str | None
    prompt: str | None
    category: str | None  # the policy's label, for an appeal
    note: str
    decided: str | None = None  # APPROVED | REJECTED once answered
    # An appeal's refused request as it can be made again (``replay.py``); None when its refusal kept none
    request: Mapping[str, Any] | None = None

    @property
    def refusal_message(self) -> tuple[str, str] | None:
        """(chat, message) of the refusal an appeal answers: where the approved job's message opens."""
        if not self.note.startswith(_MESSAGE_NOTE):
            return None
        chat, _, message = self.note.removeprefix(_MESSAGE_NOTE).rpartition(":")
        return (chat, message) if chat and message else None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    item: ReviewItem | None
    line: str  # for the moderator
    job_id: str | None = None  # the job an approved appeal made (or the held job released)
    user_line: str | None = None  # for the user, when they are to be told


def _split(key: str | None) -> tuple[str, str | None]:
    if key is None:
        return "", None
    platform, _, ident = key.partition(":")
    return platform, ident


def _item(
    row: mod.LogRow, policy: Policy | None, decided: str | None, request: Mapping[str, Any] | None = None
) -> ReviewItem:
    platform, guild = _split(row.guild)
    user_platform, user = _split(row.user)
    category = row.category
    if policy is not None and category in policy.categories:
        category = policy.categories[category].label
    return ReviewItem(
        id=row.id,
        kind=row.kind,
        platform=platform or user_platform,
        guild=guild,
        user=user,
        job_id=row.job_id,
        channel_id=row.channel_id,
        prompt=row.prompt,
        category=category,
        note=row.note,
        decided=decided,
        request=request,
    )


def _request(row: mod.LogRow) -> Mapping[str, Any] | None:
    """The request a refusal kept, as it can be made again."""
    if row.prompt is None or not row.note.startswith(mod.REQUEST_NOTE):
        return None
    return loads(row.note.removeprefix(mod.REQUEST_NOTE))


class Review:
    def __init__(self, service: JobService, policy: Policy | None, *, release: Release | None = None) -> None:
        self.service = service
        self.sessions = service.sessions
        self.policy = policy
        self.release = release  # None: this front door cannot post a held result (it asks its platform's bot)

    # -- the moderators' channel ---------------------------------------------------------------------------------

    async def channel(self, platform: str, guild: str | None) -> str | None:
        """The server's moderators' channel (None: none set, or no server)."""
        if not guild:
            return None
        async with self.sessions() as session:
            guild_id = await mod.guild_id_for(session, platform, guild)
            return (await mod.server_moderation(session, guild_id)).mod_channel_id

    async def set_channel(self, platform: str, guild: str, moderator: str, channel_id: str | None) -> None:
        async with self.sessions() as session, session.begin():
            guild_id = await mod.guild_id_for(session, platform, guild)
            moderator_id = await mod.user_id_for(session, platform, moderator)
            await mod.set_mod_channel(session, guild_id, channel_id)
            await mod.record(
                session, CHANNEL_SET, guild_id=guild_id, moderator_id=moderator_id, note=channel_id or "none"
            )

    async def server_locale(self, platform: str, guild: str | None) -> str:
        """The language of a server's moderators' channel: the server's default (/server language, /language), else
        English (also when it cannot be read: what is posted there goes out either way)."""
        if guild is None:
            return "en"
        try:
            return (await self.service.guild(platform, guild)).locale or "en"
        except Exception as exc:
            log.warning("the language of %s server %s could not be read: %s", platform, guild, exc)
            return "en"

    async def guilds_reporting_to(self, platform: str, channel_id: str) -> list[str]:
        """The platform guild ids whose moderators' channel is this one (a Telegram admin chat may serve several)."""
        async with self.sessions() as session:
            return [g for _, g in await mod.guilds_reporting_to(session, platform, channel_id)]

    # -- items -----------------------------------------------------------------------------------------------------

    async def item(self, event_id: int) -> ReviewItem | None:
        """A held result or an appeal by its audit row (None: no such row, or another kind)."""
        async with self.sessions() as session:
            rows = await mod.audit_log(session, ids=[event_id], limit=1)
            if not rows or rows[0].kind not in (HELD, APPEAL):
                return None
            decision = await mod.decision_of(session, event_id)
            request = None
            if rows[0].kind == APPEAL and rows[0].ref_id is not None:
                refusal = await mod.audit_log(session, ids=[rows[0].ref_id], limit=1)
                request = _request(refusal[0]) if refusal else None
        return _item(rows[0], self.policy, decision.kind if decision is not None else None, request)

    async def held_item(self, job_id: str) -> ReviewItem | None:
        held = await self.service.held_id(job_id)
        return await self.item(held) if held is not None else None

    async def held_to_post(self, platform: str, view: JobView) -> tuple[str, ReviewItem] | None:
        """Where the delivery core's held result goes: its server's moderators' channel, with its item; None when the
        server has no channel (``/mod review`` lists it) or the job is not held."""
        if view.guild_id is None:
            return None
        channel = await self.channel(platform, view.guild_id)
        item = await self.held_item(view.job_id)
        if channel is None or item is None:
            return None
        return channel, item

    async def pending(self, platform: str, guild: str) -> list[ReviewItem]:
        """What waits for this server's moderators, oldest first."""
        async with self.sessions() as session:
            guild_id = await mod.guild_id_for(session, platform, guild)
            ids = await mod.undecided(session, guild_id)
            rows = await mod.audit_log(session, ids=ids, limit=len(ids) or 1) if ids else []
        return sorted((_item(r, self.policy, None) for r in rows), key=lambda i: i.id)

    # -- appeals ---------------------------------------------------------------------------------------------------

    async def appeal(
        self, refusal_id: int, platform: str, user: str, *, chat_id: str, message_id: str
    ) -> ReviewItem | None:
        """The user appeals their refusal (shown in ``chat_id``/``message_id``): once per refusal, only by its user.
        None: not theirs, not a refusal, or appealed already."""
        async with self.sessions() as session, session.begin():
            user_id = await mod.user_id_for(session, platform, user)
            event = await mod.appeal(session, refusal_id, user_id)
            if event is None:
                return None
            event.note = f"{_MESSAGE_NOTE}{chat_id}:{message_id}"
            event_id = event.id
        return await self.item(event_id)

    # -- decisions -------------------------------------------------------------------------------------------------

    async def asker_locale(self, item: ReviewItem, platform: Platform) -> str:
        """The asker's reply language (their /settings choice, else their server's default; their client's is not
        known here), English when it cannot be read: the decision stands either way."""
        if item.user is None:
            return DEFAULT_LOCALE
        try:
            return await self.service.reply_locale(Requester(platform, item.user, guild_id=item.guild))
        except Exception as exc:
            log.warning("the reply language of %s could not be read: %s", item.user, exc)
            return DEFAULT_LOCALE

    async def asker_answer(
        self, decision: Decision, platform: Platform, delivery: Delivery
    ) -> tuple[ReviewItem, str] | None:
        """What the asker is told of a decision. A held result rejected: its message says so (``withhold``) and
        nothing more is told (None); an appeal decided: its item and the plain line for its asker, in their language
        (the adapter escapes it and says it where it can); None when there is nothing to tell."""
        item = decision.item
        if item is None or decision.user_line is None:
            return None
        if item.kind == HELD and item.job_id is not None:
            await delivery.withhold(item.job_id, t("mod.held.rejected", "en"))
            return None
        approved = decision.outcome == "approved"
        locale = await self.asker_locale(item, platform)
        if approved and decision.job_id is not None:
            text = t("mod.appeal.approved", locale)
        else:
            text = translate_line(decision.user_line, locale) if approved else t("mod.appeal.denied", locale)
        return item, text

    async def decide(self, event_id: int, platform: str, moderator: str, *, approve: bool) -> Decision:
        """A moderator's Approve or Reject/Deny (the adapter has checked they moderate the item's server)."""
        item = await self.item(event_id)
        if item is None:
            return Decision("unknown", None, "this item is not in the review queue")
        async with self.sessions() as session, session.begin():
            moderator_id = await mod.user_id_for(session, platform, moderator)
            decided = await mod.decide(session, event_id, moderator_id=moderator_id, approve=approve)
        if decided is None:
            earlier = await self.item(event_id)
            verb = "approved" if earlier is not None and earlier.decided == APPROVED else "rejected"
            return Decision("already", earlier, f"another moderator already {verb} this")
        if item.kind == HELD:
            return await self._held(item, approve)
        return await self._appeal(item, approve)

    async def _held(self, item: ReviewItem, approve: bool) -> Decision:
        assert item.job_id is not None
        if not approve:
            return Decision(
                "rejected",
                item,
                f"rejected: job {item.job_id} stays unposted",
                item.job_id,
                user_line="a moderator rejected your held result; it will not be posted",
            )
        posted = await self.release(item.job_id) if self.release is not None else False
        if not posted:
            log.warning("approved held job %s was not posted now (the platform deferred it)", item.job_id)
        return Decision("approved", item, f"approved: job {item.job_id} is posted where it was asked", item.job_id)

    async def _appeal(self, item: ReviewItem, approve: bool) -> Decision:
        if not approve:
            return Decision(
                "rejected",
                item,
                "appeal denied; the user is told",
                user_line="a moderator looked at your appeal and the prompt stays refused",
            )
        if item.prompt is None or item.user is None:
            return Decision("approved", item, "approved, but the prompt was purged with the evidence: nothing to run")
        request = item.request
        if request is None:  # kept before refusals kept their request: the prompt, as an /imagine where it was asked
            who = Requester(
                platform=_platform(item.platform),
                user_id=item.user,
                guild_id=item.guild,
                channel_id=item.channel_id,
            )
            request = recorded(who, {"entry": "imagine", "text": item.prompt, "image_urls": [], "stored": {}})
        try:
            with waive_policy(request):
                tickets = await self.service.rerun(request, idempotency_key=f"appeal:{item.id}")
        except (ServiceError, PromptError) as exc:
            why = exc.message if isinstance(exc, ServiceError) else str(exc)
            return Decision(
                "approved",
                item,
                f"approved, but the job could not start: {why}",
                user_line=f"your appeal was approved, but the job could not start: {why}",
            )
        where = item.refusal_message
        for ticket in tickets:
            chat, message = where if where is not None else (item.channel_id or "", "0")
            if chat:
                await self.service.record_message(
                    ticket.job_id, item.platform, chat, reply_to_row(ticket.job_id, message), REPLY_TO
                )
        job_id = tickets[0].job_id if tickets else None
        return Decision(
            "approved",
            item,
            f"appeal approved: job {job_id} runs",
            job_id,
            user_line="a moderator approved your appeal: your prompt is being painted",
        )

    # -- the audit log ---------------------------------------------------------------------------------------------

    async def log(self, platform: str, guild: str, *, user: str | None = None, limit: int = 15) -> list[mod.LogRow]:
        async with self.sessions() as session:
            guild_id = await mod.guild_id_for(session, platform, guild)
            user_id = await mod.user_id_for(session, platform, user) if user is not None else None
            return await mod.audit_log(session, guild_id=guild_id, user_id=user_id, limit=limit)

    async def feed(
        self, platform: str, after_id: int, *, limit: int = 50
    ) -> tuple[list[tuple[mod.LogRow, str | None]], int]:
        """Audit rows newer than ``after_id`` in servers of ``platform``, oldest first, each with the server's
        moderators' channel (None: none set); and the newest row id read (the next cursor)."""
        async with self.sessions() as session:
            rows = await mod.audit_log(session, after_id=after_id, limit=limit)
            last = max((r.id for r in rows), default=after_id)
            out: list[tuple[mod.LogRow, str | None]] = []
            channels: dict[str, str | None] = {}
            for row in rows:
                guild_platform, guild = _split(row.guild)
                if guild_platform != platform or guild is None:
                    continue
                if guild not in channels:
                    gid = await mod.guild_id_for(session, platform, guild)
                    channels[guild] = (await mod.server_moderation(session, gid)).mod_channel_id
                out.append((row, channels[guild]))
            return out, last

    async def last_event_id(self) -> int:
        async with self.sessions() as session:
            return await mod.last_event_id(session)


async def follow_decision(row: mod.LogRow, delivery: Delivery, rejected_line: str) -> None:
    """A held result's decision as the audit feed reads it (a decision row with a job is one on a held result):
    approved → posted where it was asked (``release_held`` posts once, so a button's own release is not repeated);
    rejected → the user's message says so. How a decision taken on the web desk reaches the chat."""
    if row.job_id is None or row.kind not in (APPROVED, REJECTED):
        return
    if row.kind == APPROVED:
        await delivery.release_held(row.job_id)
    elif await delivery.service.held_id(row.job_id) is not None:
        await delivery.withhold(row.job_id, rejected_line)


def _platform(name: str) -> Platform:
    if name == "discord":
        return "discord"
    if name == "telegram":
        return "telegram"
    raise ValueError(f"no platform {name!r}")


#: An audit row's kind as its catalog key (``audit.<name>``): the kinds are stored codes, some not key-safe.
AUDIT_KINDS = {"word+": "word_added", "word-": "word_removed"}


def kind_name(kind: str, locale: str = DEFAULT_LOCALE) -> str:
    """An audit row's kind in ``locale`` ("ban", "封禁"); an unknown kind as stored."""
    key = f"audit.{AUDIT_KINDS.get(kind, kind)}"
    return t(key, locale) if t(key, DEFAULT_LOCALE) != key else kind


def log_line(row: mod.LogRow, locale: str = DEFAULT_LOCALE) -> str:
    """One audit row as one plain line (the adapter escapes it): when, what, who, which job, the moderator."""
    parts = [f"{row.created_at:%Y-%m-%d %H:%M}", kind_name(row.kind, locale)]
    if row.user:
        parts.append(t("review.user", locale, user=row.user.partition(":")[2]))
    if row.category:
        parts.append(row.category)
    if row.job_id:
        parts.append(t("audit.job", locale, job=row.job_id))
    if row.moderator:
        parts.append(t("audit.by", locale, moderator=row.moderator.partition(":")[2]))
    if row.note and not row.note.startswith((_MESSAGE_NOTE, mod.REQUEST_NOTE)):
        parts.append(row.note[:120])
    if row.prompt:
        parts.append(f"“{' '.join(row.prompt.split())[:120]}”")
    return " · ".join(parts)


def log_text(rows: Sequence[mod.LogRow], locale: str = DEFAULT_LOCALE) -> str:
    return "\n".join(log_line(r, locale) for r in rows) or t("review.log_empty", locale)


def item_text(item: ReviewItem, locale: str = DEFAULT_LOCALE) -> str:
    """What a review message says about its item (plain; the adapter escapes it), in ``locale``."""
    who = t("review.user", locale, user=item.user) if item.user else t("review.a_user", locale)
    if item.kind == HELD:
        return t("review.held", locale, job=item.job_id, who=who, note=item.note).strip()
    prompt = item.prompt if item.prompt is not None else t("review.purged", locale)
    category = item.category or t("review.policy", locale)
    return t("review.appeal", locale, who=who, category=category, prompt=prompt)
