"""What one attachment may weigh in each Discord channel, as Discord itself last said it.

Every interaction payload carries ``attachment_size_limit`` (discord.py: ``Interaction.filesize_limit``): the limit
of the place it came from, boosts and DMs included, and the only figure that follows Discord when it changes its
limits. The job's result is posted later, by whichever bot process reads its end, so the figure is kept in Redis per
channel (under the deployment's namespace) rather than in this process's memory.
"""

from __future__ import annotations

import contextlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from impasto.queue.keys import DEFAULT, Namespace

#: A server keeps its boost for weeks at a time; a figure older than this is dropped (the guild's tier is used then).
REMEMBER_S = 30 * 24 * 3600


class UploadLimits:
    def __init__(self, redis: Redis, *, ns: Namespace = DEFAULT) -> None:
        self.redis = redis
        self.ns = ns

    def _key(self, channel_id: int | str) -> str:
        return f"{self.ns.prefix}discord:upload-limit:{channel_id}"

    async def remember(self, channel_id: int | str, limit: int) -> None:
        """What an interaction from ``channel_id`` said; a lost write only means the tier's figure is used."""
        with contextlib.suppress(RedisError):
            await self.redis.set(self._key(channel_id), str(int(limit)), ex=REMEMBER_S)

    async def get(self, channel_id: int | str) -> int | None:
        try:
            raw = await self.redis.get(self._key(channel_id))
        except RedisError:
            return None
        return int(raw) if raw else None
