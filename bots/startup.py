"""Starting a bot: secrets kept out of every log line and traceback, and a failed start said in one line.

Libraries put tokens in their messages (python-telegram-bot's ``InvalidToken: The token `123:abc` was rejected``,
httpx's request URLs ``/bot123:abc/getMe``, discord.py's ``LoginFailure``). The redaction is the one of
``impasto.bots.ops.logs`` (``Redactor``, ``install_redaction``): ``guarded_start`` hands it the secrets for every
logging handler (tracebacks included) and redacts what it prints itself with it. It turns a known start-up failure
into one line naming the cause and the setting to check (exit status 2), and prints anything else as a redacted
traceback.

Platform libraries are imported only inside the function that explains their errors: a Telegram bot process never
imports discord.py and the other way round.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from impasto.bots.ops.logs import REDACTED as MASK
from impasto.bots.ops.logs import Redactor, install_redaction
from impasto.storage.db import DatabaseError

__all__ = ["EXIT_CONFIG", "MASK", "guarded_start", "install_redaction", "redact"]


#: Exit status of a start-up that failed for a reason the operator can fix (a setting, a service down).
EXIT_CONFIG = 2


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as written, and URL-encoded) and anything token-shaped replaced by ``[redacted]``."""
    return Redactor(secrets).redact(text)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, outermost first (libraries wrap transport errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            seen.extend(_chain(inner))
    return seen


Explainer = Callable[[BaseException], str | None]


def explain_common(exc: BaseException, *, redis_url: str | None) -> str | None:
    """Failures every bot shares: the database and Redis."""
    for link in _chain(exc):
        if isinstance(link, DatabaseError):
            return f"{link} (check IMPASTO_DATABASE_URL)"
        if isinstance(link, RedisConnectionError | RedisTimeoutError):
            where = _without_password(redis_url) if redis_url else "Redis"
            return f"cannot reach Redis at {where} ({type(link).__name__}); check IMPASTO_REDIS_URL and that it runs"
    return None


def explain_telegram(exc: BaseException, *, api_url: str) -> str | None:
    from telegram.error import InvalidToken, NetworkError

    for link in _chain(exc):
        if isinstance(link, InvalidToken):
            return (
                f"the Telegram Bot API at {api_url} rejected the token; check IMPASTO_TELEGRAM_TOKEN (from @BotFather)"
            )
        if isinstance(link, NetworkError):
            return (
                f"cannot reach the Telegram Bot API at {api_url} ({type(link).__name__}); "
                "check IMPASTO_TELEGRAM_API_URL and the network"
            )
    return None


def explain_discord(exc: BaseException, *, api_url: str | None, gateway_url: str | None) -> str | None:
    import aiohttp
    import discord

    for link in _chain(exc):
        if isinstance(link, discord.LoginFailure):
            return "Discord rejected the token; check IMPASTO_DISCORD_TOKEN (Developer Portal → Bot → Token)"
        if isinstance(link, discord.PrivilegedIntentsRequired):
            return "Discord refused an intent this bot asks for; enable it for the bot in the Developer Portal"
        if isinstance(link, discord.GatewayNotFound | aiohttp.ClientConnectionError):
            where = api_url or "discord.com"
            return (
                f"cannot reach Discord at {where} ({type(link).__name__}); "
                "check IMPASTO_DISCORD_API_URL / IMPASTO_DISCORD_GATEWAY_URL and the network"
            )
    return None


def guarded_start(name: str, start: Callable[[], None], *, secrets: Iterable[str], explain: Iterable[Explainer]) -> int:
    """Run ``start``; a failure is one line on stderr (known cause, exit 2) or a redacted traceback (exit 1)."""
    kept = [s for s in secrets if s]
    redactor = Redactor(kept)
    install_redaction(kept)  # every handler: the one configure_logging made, and any other (a library's, pytest's)
    try:
        start()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        for explainer in explain:
            line = explainer(exc)
            if line is not None:
                print(f"impasto {name}: {redactor.redact(line)}", file=sys.stderr)
                return EXIT_CONFIG
        text = "".join(traceback.format_exception(exc))
        print(redactor.redact(text), file=sys.stderr, end="")
        return 1
    return 0


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
