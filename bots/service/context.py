"""Step 1 of admission: who is asking, resolved against SQL (ids, plan, server rules, preferences)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from impasto.bots.i18n.locale import negotiate
from impasto.bots.language.prefs import Preferences
from impasto.bots.service.requester import Requester
from impasto.storage import accounts
from impasto.storage.models import Preference
from impasto.storage.plans import Plan, Plans


@dataclass(frozen=True)
class Context:
    """Who is asking, where, under which plan and server rules, with which preferences."""

    who: Requester
    user_id: int
    guild_id: int | None  # the server's SQL id
    daily_cap_gpu_seconds: float | None
    allowed_channels: tuple[str, ...]
    plan: Plan
    prefs: Preference
    # The reply language: the user's /settings choice, else the platform's, else the server's default, else English.
    locale: str = "en"
    chosen_locale: str | None = None  # the user's own choice (/settings); None: not chosen
    server_locale: str | None = None  # the server's default (/server language, Telegram's /language)

    @property
    def user_key(self) -> str:
        return f"{self.who.platform}:{self.who.user_id}"

    @property
    def guild_key(self) -> str | None:
        return f"{self.who.platform}:{self.who.guild_id}" if self.who.guild_id else None

    @property
    def channel_id(self) -> str | None:
        return self.who.channel_id

    @property
    def preferences(self) -> Preferences:
        """What the command language needs to read a prompt the way this user would (suffix, options, /settings)."""
        return Preferences(
            suffix=self.prefs.suffix, options=dict(self.prefs.options), settings=settings_text(self.prefs)
        )


async def load_context(session: AsyncSession, who: Requester, plans: Plans) -> Context:
    """The requester's rows (created on first sight) and the plan that applies: the operator's in the console, the
    one an operator gave this user (``impasto admin plan set``), the best plan of the member's roles in a server, the
    default elsewhere."""
    user, prefs, guild = await accounts.requester(
        session, who.platform, who.user_id, who.display_name, who.guild_id or None
    )
    if who.platform == "console":
        plan = plans.get(plans.operator)
    elif user.plan is not None and user.plan in plans.plans:  # the operator's `impasto admin plan set`
        plan = plans.get(user.plan)
    elif guild is not None:
        plan = plans.best(str(guild.role_plans[r]) for r in who.roles if r in guild.role_plans)
    else:
        plan = plans.get(plans.default)
    return Context(
        who=who,
        user_id=user.id,
        guild_id=guild.id if guild is not None else None,
        daily_cap_gpu_seconds=guild.daily_cap_gpu_seconds if guild is not None else None,
        allowed_channels=tuple(guild.allowed_channels) if guild is not None else (),
        plan=plan,
        prefs=prefs,
        chosen_locale=user.locale,
        server_locale=guild.locale if guild is not None else None,
        locale=negotiate(
            chosen=user.locale, platform=who.client_locale, server=guild.locale if guild is not None else None
        ),
    )


def settings_text(prefs: Preference) -> str:
    """/settings as the parameters they stand for (``--niji 6 --style raw --s 250 --relax``)."""
    parts: list[str] = []
    if prefs.model and prefs.model.startswith("niji"):
        parts.append(f"--niji {prefs.model[4:]}".rstrip())
    elif prefs.model and prefs.model.startswith("v"):
        parts.append(f"--v {prefs.model[1:]}")
    if prefs.raw:
        parts.append("--style raw")
    if prefs.stylize is not None:
        parts.append(f"--s {prefs.stylize}")
    if prefs.mode and prefs.mode != "fast":
        parts.append(f"--{prefs.mode}")
    if prefs.visibility == "stealth":
        parts.append("--stealth")
    return " ".join(parts)
