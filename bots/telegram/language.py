"""Which language to answer a Telegram user in: their /settings choice, else their app's ``language_code``, else
their group's default (``/language``, set by the group's administrators), else English
(``impasto.bots.i18n.locale.negotiate``). The choice and the group's default are in SQL; when SQL cannot be read (an
outage being reported), the app's language still applies."""

from __future__ import annotations

import logging
from typing import Protocol

from impasto.bots.i18n.locale import negotiate
from impasto.bots.service.requester import Requester

log = logging.getLogger(__name__)


class _Locales(Protocol):
    async def reply_locale(self, who: Requester) -> str: ...


async def reply_locale(service: _Locales, who: Requester) -> str:
    try:
        return await service.reply_locale(who)
    except Exception as exc:  # an outage: answer in the app's language rather than not at all
        log.warning("the reply language could not be read (%s); the app's is used", exc)
        return negotiate(platform=who.client_locale)
