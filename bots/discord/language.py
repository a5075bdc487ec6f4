"""Which language to answer a Discord user in: their /settings choice, else the interaction's locale (their client's
language), else their server's default (/server language), else English (``impasto.bots.i18n.locale.negotiate``).

The choice and the server's default are in SQL; the bot reaches the job service through the client's ``controls``
(``app.ImpastoBot``). When SQL cannot be read (an outage being reported), the client's language still applies.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from impasto.bots.discord.requester import requester_of
from impasto.bots.i18n.locale import negotiate

log = logging.getLogger(__name__)


def client_locale(interaction: discord.Interaction[Any]) -> str:
    """The language from the interaction alone (its locale, else the server's preferred locale), no SQL read."""
    return negotiate(platform=str(interaction.locale.value))


async def reply_locale(interaction: discord.Interaction[Any]) -> str:
    """The language to answer this interaction in."""
    controls = getattr(interaction.client, "controls", None)
    service = getattr(controls, "service", None)
    if service is None:
        return client_locale(interaction)
    try:
        return str(await service.reply_locale(requester_of(interaction)))
    except Exception as exc:  # an outage: answer in the client's language rather than not at all
        log.warning("the reply language could not be read (%s); the client's is used", exc)
        return client_locale(interaction)
