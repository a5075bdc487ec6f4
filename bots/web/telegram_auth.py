"""Telegram Mini App ``initData`` validation, as Telegram documents it (core.telegram.org/bots/webapps).

``initData`` is a query string Telegram hands the page; its ``hash`` is
``hex(HMAC_SHA256(key=HMAC_SHA256(key="WebAppData", msg=bot_token), msg=data_check_string))`` where the data-check
string is every other field as ``key=value``, sorted by key and joined with newlines. A recent ``auth_date`` keeps an
old, leaked ``initData`` from being replayed. Written here (not a library) because it is these dozen lines and the
project's Telegram library only speaks the Bot API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

#: How old an ``initData`` may be (seconds). The editor link itself lives 15 minutes; a Mini App session no longer.
MAX_AGE_SECONDS = 15 * 60


class InitDataError(Exception):
    """Mini App sign-in data refused: ``message`` in English, ``key`` its catalog message (the page's language)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass(frozen=True)
class WebAppUser:
    user_id: str
    first_name: str
    username: str | None
    auth_date: int


def _secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """``fields`` with Telegram's ``hash`` added, as a query string: what Telegram would hand a Mini App (tests)."""
    from urllib.parse import urlencode

    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    digest = hmac.new(_secret_key(bot_token), check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def validate_init_data(
    init_data: str, bot_token: str, *, now: float | None = None, max_age: int = MAX_AGE_SECONDS
) -> WebAppUser:
    """The Telegram user an ``initData`` string vouches for; ``InitDataError`` when it is forged, stale or empty."""
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataError(
            "Telegram's sign-in data is malformed; open the editor from the bot again", "web.tg_malformed"
        ) from None
    fields = dict(pairs)
    received = fields.pop("hash", "")
    if not received or len(pairs) != len(fields) + 1:
        raise InitDataError(
            "Telegram's sign-in data is not signed; open the editor from the bot again", "web.tg_unsigned"
        )
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    expected = hmac.new(_secret_key(bot_token), check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received):
        raise InitDataError(
            "Telegram's sign-in data does not check out; open the editor from the bot again", "web.tg_bad_signature"
        )
    try:
        auth_date = int(fields["auth_date"])
        user = json.loads(fields["user"])
        user_id = str(int(user["id"]))
    except (KeyError, ValueError, TypeError):
        raise InitDataError(
            "Telegram's sign-in data has no user; open the editor from the bot again", "web.tg_no_user"
        ) from None
    age = (now if now is not None else time.time()) - auth_date
    if age > max_age or age < -60:
        raise InitDataError("Telegram's sign-in data is too old; open the editor from the bot again", "web.tg_too_old")
    return WebAppUser(user_id, str(user.get("first_name", "")), user.get("username"), auth_date)
