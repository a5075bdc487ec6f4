"""Pointing discord.py at a REST root and a gateway other than Discord's own.

discord.py reads both from class attributes: every ``Route`` (bot REST calls and the interaction webhooks alike)
prefixes ``Route.BASE``, and the non-sharded client always opens ``DiscordWebSocket.DEFAULT_GATEWAY`` (it also falls
back to it after an invalidated session). There is no per-client option, so this is set once per process before the
client logs in; a bot process runs one client. The reason to change them in production is a shared rate-limit proxy in
front of several bot processes; in tests it is the fake Discord.
"""

from __future__ import annotations

import re

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

_VERSIONED = re.compile(r"/v\d+$")


def rest_root(api_url: str | None) -> str:
    """The REST root with its API version: ``http://host/api`` becomes ``http://host/api/v10``."""
    if not api_url:
        return DISCORD_API_URL
    root = api_url.rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"IMPASTO_DISCORD_API_URL must be an http(s) URL, got {api_url!r}")
    return root if _VERSIONED.search(root) else root + "/v10"


def use_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    Route.BASE = rest_root(api_url)
    gateway = gateway_url or DISCORD_GATEWAY_URL
    if not gateway.startswith(("ws://", "wss://")):
        raise ValueError(f"IMPASTO_DISCORD_GATEWAY_URL must be a ws(s) URL, got {gateway_url!r}")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
