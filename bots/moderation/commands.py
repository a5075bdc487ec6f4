"""The moderators' commands, platform-neutral: each takes parsed arguments and returns the one line to answer.

Discord (members with Manage Messages) and Telegram (chat administrators) adapters check the permission, parse their
command into these arguments, call one function inside a transaction and show the line to the moderator only
(Discord: ephemeral; Telegram: a reply in the admin chat). A ``ModerationCommandError`` is a bad argument: its message
names the argument and what is allowed. Words are echoed to moderators, never to users; adapters escape them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from impasto.queue.moderation.matching import PolicyError
from impasto.queue.moderation.policy import CHOICES, Policy
from impasto.storage import moderation as mod
from impasto.storage.models import POLICY_SET, WORD_ADDED, WORD_REMOVED, utcnow

DURATION = re.compile(r"(\d{1,6})\s*([smhdw])")
DURATION_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
CHOICE_TEXT = {"block": "blocked everywhere", "nsfw": "only in NSFW channels", "allow": "allowed"}


class ModerationCommandError(ValueError):
    """A moderator's argument is wrong; the message says which and what is allowed."""


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` → a timedelta."""
    found = DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise ModerationCommandError(f"duration {text!r}: write a number and s, m, h, d or w (e.g. 30m, 12h, 7d)")
    return timedelta(seconds=int(found.group(1)) * DURATION_S[found.group(2)])


async def ban_user(
    session: AsyncSession,
    *,
    guild_id: int,
    moderator_id: int,
    user_id: int,
    user_name: str,
    reason: str = "",
    duration: str | None = None,
    now: datetime | None = None,
) -> str:
    now = now or utcnow()
    until = now + parse_duration(duration) if duration else None
    await mod.ban(session, user_id, guild_id, until=until, reason=reason, by_user_id=moderator_id, now=now)
    return f"{user_name} is banned from painting here" + (f" until {until:%Y-%m-%d %H:%M} UTC" if until else "")


async def unban_user(
    session: AsyncSession,
    *,
    guild_id: int,
    moderator_id: int,
    user_id: int,
    user_name: str,
    now: datetime | None = None,
) -> str:
    lifted = await mod.unban(session, user_id, guild_id, by_user_id=moderator_id, now=now)
    return f"{user_name} may paint here again" if lifted else f"{user_name} was not banned here"


async def add_word(
    session: AsyncSession, policy: Policy, *, guild_id: int, moderator_id: int, word: str, category: str = "custom"
) -> str:
    try:
        word = policy.check_server_word(category, word)
    except PolicyError as exc:
        raise ModerationCommandError(str(exc)) from exc
    changed = await mod.add_word(session, guild_id, category, word, by_user_id=moderator_id)
    await mod.record(session, WORD_ADDED, guild_id=guild_id, moderator_id=moderator_id, category=category, note=word)
    label = policy.categories[category].label
    return f"{word!r} now counts as {label} here" if changed else f"{word!r} already counts as {label} here"


async def remove_word(session: AsyncSession, policy: Policy, *, guild_id: int, moderator_id: int, word: str) -> str:
    word = word.strip()
    locked = [c.label for c in policy.categories.values() if c.locked]
    outcome = await mod.remove_word(session, guild_id, word, by_user_id=moderator_id)
    await mod.record(session, WORD_REMOVED, guild_id=guild_id, moderator_id=moderator_id, note=word)
    if outcome == "unadded":
        return f"{word!r} is no longer one of this server's words"
    note = f" (words of {', '.join(locked)} stay: no server can remove them)" if locked else ""
    if outcome == "unchanged":
        return f"{word!r} was already removed here{note}"
    return f"{word!r} no longer refuses prompts here{note}"


async def list_words(session: AsyncSession, policy: Policy, *, guild_id: int) -> str:
    stored = await mod.server_moderation(session, guild_id)
    lines = []
    for name, category in policy.categories.items():
        words = sorted(w for c, w in stored.added if c == name)
        if words:
            lines.append(f"{category.label}: {', '.join(words)}")
    if stored.removed:
        lines.append(f"removed from the policy's lists: {', '.join(sorted(stored.removed))}")
    return "\n".join(lines) or "this server has no words of its own (the policy's lists apply)"


async def set_policy(
    session: AsyncSession, policy: Policy, *, guild_id: int, moderator_id: int, category: str, choice: str
) -> str:
    spec = policy.categories.get(category)
    if spec is None:
        raise ModerationCommandError(f"no category {category!r}; the categories are {', '.join(policy.categories)}")
    if spec.locked:
        raise ModerationCommandError(f"{spec.label} is locked: no server can change it")
    if choice not in (*CHOICES, "default"):
        raise ModerationCommandError(f"{choice!r}: choose one of {', '.join(CHOICES)} or default")
    await mod.set_choice(session, guild_id, category, None if choice == "default" else choice)
    await mod.record(session, POLICY_SET, guild_id=guild_id, moderator_id=moderator_id, category=category, note=choice)
    effective = spec.default if choice == "default" else choice
    return f"{spec.label}: {CHOICE_TEXT[effective]} here"


async def show_policy(session: AsyncSession, policy: Policy, *, guild_id: int) -> str:
    rules = policy.rules_for(await mod.server_moderation(session, guild_id))
    lines = []
    for name, spec in policy.categories.items():
        choice = policy.choice(rules, name)
        lock = " (locked)" if spec.locked else "" if name in rules.choices else " (default)"
        lines.append(f"{spec.label}: {CHOICE_TEXT[choice]}{lock}")
    return "\n".join(lines)
