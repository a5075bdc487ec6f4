"""Redis-backed guards of the web front door: editor links spent once, and a per-user rate limit.

Both are single atomic Redis commands (``SET NX EX``, ``INCR`` + ``EXPIRE`` in a pipeline) so any number of web
processes agree. Keys start with ``prefix`` (``impasto:web:`` in production; tests use their own).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

DEFAULT_PREFIX = "impasto:web:"


class Guards:
    def __init__(
        self, redis: Redis, *, prefix: str = DEFAULT_PREFIX, per_minute: int = 30, link_ttl_seconds: int = 16 * 60
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_minute = per_minute
        self.link_ttl_seconds = link_ttl_seconds  # longer than an editor link lives: a spent nonce outlives it

    async def spend(self, nonce: str) -> bool:
        """Mark an editor link's nonce used; False when it already was (a reused link)."""
        return bool(await self.redis.set(f"{self.prefix}spent:{nonce}", b"1", nx=True, ex=self.link_ttl_seconds))

    async def unspend(self, nonce: str) -> None:
        """Give a link back after a refusal that was not the user's doing twice (e.g. a mask to redraw)."""
        await self.redis.delete(f"{self.prefix}spent:{nonce}")

    async def is_spent(self, nonce: str) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}spent:{nonce}"))

    async def allow(self, user_key: str) -> bool:
        """One more request by ``user_key`` ("platform:id") this minute; False past ``per_minute``."""
        key = f"{self.prefix}rate:{user_key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60, nx=True)
            count, _ = await pipe.execute()
        return int(count) <= self.per_minute


#: How long a region job's reply target is kept: far longer than any job waits in the queue.
REPLY_TARGET_TTL_SECONDS = 7 * 24 * 3600


class ReplyTargets:
    """Where a region job's result goes: the chat and the message whose Vary (Region) button was pressed.

    The job row already names the chat (``jobs.channel_id``, from the presser's ``Requester``); this adds the message
    to reply to. Delivery reads ``get(job_id)`` when the job's result arrives and, if present, posts the grid there
    as a reply to ``message_id``; if Redis lost it, the job's own ``channel_id`` still says where, without the reply.
    """

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, job_id: str) -> str:
        return f"{self.prefix}reply:{job_id}"

    async def save(self, job_id: str, target: ReplyTarget) -> None:
        await self.redis.set(self.key(job_id), json.dumps(asdict(target)), ex=REPLY_TARGET_TTL_SECONDS)

    async def get(self, job_id: str) -> ReplyTarget | None:
        raw = await self.redis.get(self.key(job_id))
        return ReplyTarget(**json.loads(raw)) if raw else None


@dataclass(frozen=True)
class ReplyTarget:
    platform: str  # "discord" | "telegram"
    chat_id: str | None  # Discord channel id, Telegram chat id ("chat:topic" for a forum topic)
    message_id: str | None  # the message whose button was pressed: reply to it
    guild_id: str | None = None
