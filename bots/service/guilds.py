"""A server's rules: where impasto works, which roles get which plan, a daily fast-time cap per member.

The adapter checks that the caller administers the server; the service stores the rules, and admission applies them
to every request (``checks.channel_allowed``, the daily cap in the quota hold, the plan in the context).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from impasto.bots.i18n.locale import choose_locale
from impasto.bots.service.base import ServiceBase
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.views import GuildView
from impasto.storage import accounts
from impasto.storage.models import Guild


class Guilds(ServiceBase):
    async def guild(self, platform: str, guild_id: str) -> GuildView:
        async with self.sessions() as session, session.begin():
            return guild_view(await accounts.upsert_guild(session, platform, guild_id))

    async def configure_guild(
        self,
        platform: str,
        guild_id: str,
        *,
        allowed_channels: Sequence[str] | None = None,
        role_plans: Mapping[str, str] | None = None,
        daily_cap_gpu_seconds: float | None = None,
        clear_daily_cap: bool = False,
    ) -> GuildView:
        if role_plans is not None:
            for role, plan in role_plans.items():
                if plan not in self.plans.plans:
                    raise InvalidRequest(
                        f"role {role!r} maps to unknown plan {plan!r}; plans: {', '.join(sorted(self.plans.plans))}"
                    )
        if daily_cap_gpu_seconds is not None and daily_cap_gpu_seconds < 0:
            raise InvalidRequest(f"the daily cap must be >= 0 GPU-seconds, not {daily_cap_gpu_seconds}")
        async with self.sessions() as session, session.begin():
            row = await accounts.upsert_guild(session, platform, guild_id)
            if allowed_channels is not None:
                row.allowed_channels = [str(c) for c in allowed_channels]
            if role_plans is not None:
                row.role_plans = {str(k): str(v) for k, v in role_plans.items()}
            if daily_cap_gpu_seconds is not None:
                row.daily_cap_gpu_seconds = float(daily_cap_gpu_seconds)
            if clear_daily_cap:
                row.daily_cap_gpu_seconds = None
            return guild_view(row)

    async def set_server_language(self, platform: str, guild_id: str, text: str, *, locale: str = "en") -> GuildView:
        """``/server language`` (Discord) and ``/language`` (a Telegram group's admins): the server's default reply
        language, by name or tag ("中文", "English", "zh-CN"); "auto" clears it. The adapter checks the caller may.
        An unknown language is refused with the choices, in ``locale``."""
        try:
            chosen = choose_locale(text, locale=locale)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        async with self.sessions() as session, session.begin():
            row = await accounts.upsert_guild(session, platform, guild_id)
            row.locale = chosen
            return guild_view(row)


def guild_view(row: Guild) -> GuildView:
    return GuildView(
        platform=row.platform,
        guild_id=row.platform_guild_id,
        allowed_channels=tuple(row.allowed_channels),
        role_plans={str(k): str(v) for k, v in row.role_plans.items()},
        daily_cap_gpu_seconds=row.daily_cap_gpu_seconds,
        locale=row.locale,
    )
