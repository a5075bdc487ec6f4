"""The admission gate: bans, the prompt policy and the ladder, in one call before anything is charged.

``admit`` is what the job service calls for every request that would paint (imagine, its permutations, Remix edits,
Custom Zoom, a button that re-runs a prompt): the user's ban or timeout first, then the policy with the server's
rules, then — on a refusal — the audit row and a step on the warn → timeout → ban ladder. The user's one line says
the category (never the words) and where they stand on the ladder.

It runs in the caller's transaction and writes on a refusal: commit it even though no job is made, or the audit row
and the strike are lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from impasto.queue.moderation.policy import Policy
from impasto.queue.moderation.verdict import Verdict, check_texts
from impasto.storage import moderation as mod
from impasto.storage.models import TIMEOUT


@dataclass(frozen=True)
class Admission:
    allowed: bool
    message: str | None = None  # the user's one line when refused
    verdict: Verdict | None = None  # None when a ban refused before the policy ran
    strike: mod.Strike | None = None
    ban: mod.Ban | None = None


def ban_message(ban: mod.Ban) -> str:
    where = "anywhere" if ban.everywhere else "on this server"
    if ban.until is None:
        return f"you are banned from painting {where}; ask a moderator"
    why = "after refused prompts" if ban.kind == TIMEOUT else "by a moderator"
    return f"you are timed out {where} until {ban.until:%Y-%m-%d %H:%M} UTC ({why})"


def _ladder(strike: mod.Strike) -> str:
    if strike.banned:
        return "; you are now banned from painting on this server"
    if strike.timeout_until is not None:
        return f"; you are timed out here until {strike.timeout_until:%Y-%m-%d %H:%M} UTC"
    return f" (warning {strike.refusals} of {strike.limit})"


async def admit(
    session: AsyncSession,
    policy: Policy,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: str | None,
    texts: Sequence[str],
    nsfw_channel: bool,
    prompt: str | None = None,
    now: datetime | None = None,
    check_policy: bool = True,
    request: str | None = None,
) -> Admission:
    """Whether this request may go on.

    ``texts`` are what would be painted (``check.job_texts`` of each parsed job, or a suffix, a zoom prompt …);
    ``prompt`` is what the user typed, kept as the audit's evidence (default: the texts). ``nsfw_channel`` is the
    platform's flag (Discord's channel ``nsfw``; Telegram has none: pass False and the server's "NSFW allowed in this
    chat" setting decides). ``check_policy`` False: a moderator approved exactly this request on appeal
    (``admission_check.waive_policy``); the ban check still runs. ``request``: the request as it can be made again
    (``bots/service/replay.py``, as JSON), kept with a refusal for an approved appeal to rerun.
    """
    ban = await mod.active_ban(session, user_id, guild_id, now=now)
    if ban is not None:
        return Admission(allowed=False, message=ban_message(ban), ban=ban)
    if not check_policy:
        return Admission(allowed=True)
    stored = await mod.server_moderation(session, guild_id)
    verdict = check_texts(policy, policy.rules_for(stored), texts, nsfw_channel=nsfw_channel or stored.nsfw_chat)
    if verdict.allowed:
        return Admission(allowed=True, verdict=verdict)
    strike = await mod.record_refusal(
        session,
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        category=verdict.category,
        rule=verdict.rule,
        matched=verdict.matched,
        prompt=prompt if prompt is not None else "\n".join(texts),
        now=now,
        request=request,
    )
    return Admission(allowed=False, message=f"{verdict.reason}{_ladder(strike)}", verdict=verdict, strike=strike)
