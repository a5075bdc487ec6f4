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

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.queue.moderation.matching import PolicyError
from impasto.queue.moderation.policy import CHOICES, Policy
from impasto.storage import moderation as mod
from impasto.storage.models import POLICY_SET, WORD_ADDED, WORD_REMOVED, utcnow

DURATION = re.compile(r"(\d{1,6})\s*([smhdw])")
DURATION_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
CHOICE_TEXT = {"block": "blocked everywhere", "nsfw": "only in NSFW channels", "allow": "allowed"}


def choice_text(choice: str, locale: str = DEFAULT_LOCALE) -> str:
    """A category's rule in words ("blocked everywhere"), in ``locale``."""
    return t(f"modcmd.choice_{choice}", locale) if choice in CHOICE_TEXT else choice


class ModerationCommandError(ValueError):
    """A moderator's argument is wrong; the message says which and what is allowed."""


def parse_duration(text: str, locale: str = DEFAULT_LOCALE) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` → a timedelta."""
    found = DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise ModerationCommandError(t("modcmd.bad_duration", locale, text=repr(text)))
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
    locale: str = DEFAULT_LOCALE,
) -> str:
    now = now or utcnow()
    until = now + parse_duration(duration, locale) if duration else None
    await mod.ban(session, user_id, guild_id, until=until, reason=reason, by_user_id=moderator_id, now=now)
    if until is None:
        return t("modcmd.banned", locale, user=user_name)
    return t("modcmd.banned_until", locale, user=user_name, until=f"{until:%Y-%m-%d %H:%M}")


async def unban_user(
    session: AsyncSession,
    *,
    guild_id: int,
    moderator_id: int,
    user_id: int,
    user_name: str,
    now: datetime | None = None,
    locale: str = DEFAULT_LOCALE,
) -> str:
    lifted = await mod.unban(session, user_id, guild_id, by_user_id=moderator_id, now=now)
    return t("modcmd.unbanned" if lifted else "modcmd.not_banned", locale, user=user_name)


async def add_word(
    session: AsyncSession,
    policy: Policy,
    *,
    guild_id: int,
    moderator_id: int,
    word: str,
    category: str = "custom",
    locale: str = DEFAULT_LOCALE,
) -> str:
    try:
        word = policy.check_server_word(category, word)
    except PolicyError as exc:
        raise ModerationCommandError(str(exc)) from exc
    changed = await mod.add_word(session, guild_id, category, word, by_user_id=moderator_id)
    await mod.record(session, WORD_ADDED, guild_id=guild_id, moderator_id=moderator_id, category=category, note=word)
    label = policy.categories[category].label
    return t("modcmd.word_added" if changed else "modcmd.word_already", locale, word=repr(word), label=label)


async def remove_word(
    session: AsyncSession, policy: Policy, *, guild_id: int, moderator_id: int, word: str, locale: str = DEFAULT_LOCALE
) -> str:
    word = word.strip()
    locked = [c.label for c in policy.categories.values() if c.locked]
    outcome = await mod.remove_word(session, guild_id, word, by_user_id=moderator_id)
    await mod.record(session, WORD_REMOVED, guild_id=guild_id, moderator_id=moderator_id, note=word)
    if outcome == "unadded":
        return t("modcmd.word_unadded", locale, word=repr(word))
    note = t("modcmd.locked_note", locale, categories=", ".join(locked)) if locked else ""
    if outcome == "unchanged":
        return t("modcmd.word_was_removed", locale, word=repr(word), note=note)
    return t("modcmd.word_removed", locale, word=repr(word), note=note)


async def list_words(session: AsyncSession, policy: Policy, *, guild_id: int, locale: str = DEFAULT_LOCALE) -> str:
    stored = await mod.server_moderation(session, guild_id)
    lines = []
    for name, category in policy.categories.items():
        words = sorted(w for c, w in stored.added if c == name)
        if words:
            lines.append(f"{category.label}: {', '.join(words)}")
    if stored.removed:
        lines.append(t("modcmd.removed_words", locale, words=", ".join(sorted(stored.removed))))
    return "\n".join(lines) or t("modcmd.no_words", locale)


async def set_policy(
    session: AsyncSession,
    policy: Policy,
    *,
    guild_id: int,
    moderator_id: int,
    category: str,
    choice: str,
    locale: str = DEFAULT_LOCALE,
) -> str:
    spec = policy.categories.get(category)
    if spec is None:
        categories = ", ".join(policy.categories)
        raise ModerationCommandError(t("modcmd.no_category", locale, category=repr(category), categories=categories))
    if spec.locked:
        raise ModerationCommandError(t("modcmd.locked", locale, label=spec.label))
    if choice not in (*CHOICES, "default"):
        raise ModerationCommandError(t("modcmd.bad_choice", locale, choice=repr(choice), choices=", ".join(CHOICES)))
    await mod.set_choice(session, guild_id, category, None if choice == "default" else choice)
    await mod.record(session, POLICY_SET, guild_id=guild_id, moderator_id=moderator_id, category=category, note=choice)
    effective = spec.default if choice == "default" else choice
    return t("modcmd.policy_set", locale, label=spec.label, rule=choice_text(effective, locale))


async def show_policy(session: AsyncSession, policy: Policy, *, guild_id: int, locale: str = DEFAULT_LOCALE) -> str:
    rules = policy.rules_for(await mod.server_moderation(session, guild_id))
    lines = []
    for name, spec in policy.categories.items():
        choice = policy.choice(rules, name)
        lock = (
            t("modcmd.locked_tag", locale)
            if spec.locked
            else ""
            if name in rules.choices
            else t("modcmd.default_tag", locale)
        )
        lines.append(f"{spec.label}: {choice_text(choice, locale)}{lock}")
    return "\n".join(lines)
