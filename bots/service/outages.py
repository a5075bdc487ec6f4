"""What a user is told when a service impasto depends on is down, instead of "something went wrong".

A bot's last-resort error handler calls ``outage_line(exc)``: for a database or Redis outage it returns the one line
to show (nothing was charged: admission is one SQL transaction, and a job that reached SQL but not Redis is queued by
the sweep when Redis is back); for anything else ``None``, and the handler keeps its generic answer.
"""

from __future__ import annotations

from asyncpg.exceptions import ConnectionDoesNotExistError, PostgresConnectionError  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

DATABASE_DOWN = "impasto is temporarily unavailable (its database is restarting); nothing was charged, try again soon"
QUEUE_DOWN = "the queue is restarting; nothing was charged, try again in a minute"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def outage_line(exc: BaseException) -> str | None:
    """The user's line for an outage behind ``exc``, else None."""
    links = _chain(exc)
    # Redis first: redis-py wraps the socket error it met, so its own class is the surer sign.
    if any(isinstance(link, RedisConnectionError | RedisTimeoutError) for link in links):
        return QUEUE_DOWN
    for link in links:
        if isinstance(link, OperationalError | InterfaceError | PostgresConnectionError | ConnectionDoesNotExistError):
            return DATABASE_DOWN
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return DATABASE_DOWN
        # asyncpg lets a refused or reset connection through as the built-in error, unwrapped by SQLAlchemy; the
        # service talks to nothing else over a socket of its own, so that is the database.
        if isinstance(link, ConnectionError):
            return DATABASE_DOWN
    return None
