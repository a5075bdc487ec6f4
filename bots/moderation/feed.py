"""The audit feed: each moderation action posted as one line to its server's moderators' channel, on one platform.

Every bot process of a platform runs ``AuditFeed.run``; a turn in Redis lets one of them read the audit log past a
cursor (also in Redis, under the deployment's namespace) and post, so a line goes out once however many processes
run. The cursor starts at the newest row when the feed first runs (no flood of old history). Held results and
appeals are not feed lines: they are posted as review items, with their buttons. ``on_row`` sees every row: a held
result approved or rejected on the web desk (which has no chat client) is posted or told by the bots from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from impasto.bots.moderation.review import Review, log_line
from impasto.queue.keys import DEFAULT, Namespace
from impasto.storage.models import APPEAL, HELD
from impasto.storage.moderation import LogRow

log = logging.getLogger(__name__)
QUIET_KINDS = (HELD, APPEAL)
FEED_EVERY_S = 2.0

#: Post one plain line (the adapter escapes it) to a channel id.
PostLine = Callable[[str, str], Awaitable[None]]
#: Told of every new audit row of the platform: a held result decided elsewhere (the web desk) is posted or told here.
OnRow = Callable[[LogRow], Awaitable[None]]


class AuditFeed:
    def __init__(
        self,
        review: Review,
        redis: Redis,
        platform: str,
        post: PostLine,
        *,
        ns: Namespace = DEFAULT,
        every_s: float = FEED_EVERY_S,
        on_row: OnRow | None = None,
    ) -> None:
        self.on_row = on_row
        self.review = review
        self.redis = redis
        self.platform = platform
        self.post = post
        self.ns = ns
        self.every_s = every_s

    async def _locale(self, guild: str | None) -> str:
        """The moderators' channel's language: its server's default (/server language, /language), else English."""
        platform, _, guild_id = (guild or "").partition(":")
        return await self.review.server_locale(platform, guild_id or None)

    def _key(self, name: str) -> str:
        return f"{self.ns.prefix}modfeed:{self.platform}:{name}"

    async def run(self) -> None:
        """Post new audit rows until cancelled; a failed round is logged and tried again."""
        await self.redis.set(self._key("cursor"), await self.review.last_event_id(), nx=True)
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: the audit feed failed; trying again", self.platform)
            await asyncio.sleep(self.every_s)

    async def once(self) -> int:
        """One round, if it is this process's turn: how many lines were posted."""
        turn = self._key("turn")
        if not await self.redis.set(turn, "1", nx=True, px=max(1000, int(self.every_s * 5000))):
            return 0
        try:
            raw = await self.redis.get(self._key("cursor"))
            rows, last = await self.review.feed(self.platform, int(raw or 0))
            posted = 0
            for row, channel in rows:
                if channel is not None and row.kind not in QUIET_KINDS:
                    await self.post(channel, log_line(row, await self._locale(row.guild)))
                    posted += 1
                if self.on_row is not None:
                    await self.on_row(row)
                await self.redis.set(self._key("cursor"), row.id)  # a line is posted once, even if a later one fails
            await self.redis.set(self._key("cursor"), last)
            return posted
        finally:
            await self.redis.delete(turn)
