"""Who is asking, and where: the one thing every front door builds before it calls the core.

Platform adapters turn a Discord interaction, a Telegram update or console arguments into a ``Requester``; buttons
name an ``impasto.queue.actions.Action``. The job service takes it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["discord", "telegram", "console"]


@dataclass(frozen=True)
class Requester:
    """Who asked, and where. Users are per platform: a Discord and a Telegram user are different people."""

    platform: Platform
    user_id: str
    display_name: str = ""
    guild_id: str | None = None  # Discord guild, Telegram group/supergroup chat; None in DMs and the console
    channel_id: str | None = None  # where to answer (channel, chat, forum topic as "chat:topic")
    roles: tuple[str, ...] = ()  # platform role ids, for plan mapping
    nsfw_channel: bool = False
    # The platform's language tag (Discord's interaction locale "zh-CN", Telegram's language_code "zh-hans");
    # the reply language is negotiated from it, the user's /settings choice and the server's default.
    client_locale: str | None = None
