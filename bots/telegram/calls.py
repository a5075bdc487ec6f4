"""One Bot API call with Telegram's refusals turned into the delivery core's two (``Deferred``, ``Gone``).

Short 429s are slept through here (Telegram says how long); a longer wait, or the network failing again and again,
becomes ``Deferred`` (the core retries an end from the stored job), and a chat the bot may no longer write to
becomes ``Gone``. ``BadRequest`` passes through: what it means depends on the call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from impasto.bots.service.delivery.core import Deferred, Gone

T = TypeVar("T")


def retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 keeps the timedelta privately and warns when the public int is read; take the timedelta if present.
    value = getattr(exc, "_retry_after", None)
    if not isinstance(value, dt.timedelta):
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


async def call_telegram(make: Callable[[], Awaitable[T]], *, wait_inline_s: float = 5.0, attempts: int = 3) -> T:
    """Run one Bot API call, sleeping through short 429s; longer waits and network trouble become ``Deferred``."""
    for attempt in range(attempts):
        try:
            return await make()
        except RetryAfter as exc:
            wait_s = retry_after_seconds(exc)
            if wait_s > wait_inline_s or attempt == attempts - 1:
                raise Deferred(wait_s, str(exc), rate_limited=True) from exc
            await asyncio.sleep(wait_s)
        except Forbidden as exc:
            raise Gone(str(exc)) from exc
        except NetworkError as exc:  # includes TimedOut; BadRequest is a NetworkError subclass in PTB
            if isinstance(exc, BadRequest):
                raise
            if attempt == attempts - 1:
                raise Deferred(5.0, str(exc)) from exc
            await asyncio.sleep(1.0 + attempt)
    raise AssertionError("unreachable")
