"""Where a job's messages go and what its caption says, kept in Redis so any bot process can deliver it.

A route is written when a job is accepted (the chat, the topic, the message to reply to, the progress message) and
read when its events arrive, possibly in another process or after a restart. The per-chat edit gate and the
redelivery queue live here too: the bot process itself holds nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from redis.asyncio import Redis

from impasto.bots.telegram.captions import CaptionInfo
from impasto.queue.keys import DEFAULT, Namespace

ROUTE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Route:
    job_id: str
    chat_id: int
    caption: CaptionInfo
    thread_id: int | None = None  # forum topic
    reply_to: int | None = None  # the user's command message (or the message whose button was pressed)
    progress_message_id: int | None = None
    progress_is_photo: bool = False  # once a preview arrived, the progress message is a photo

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Route:
        data: dict[str, Any] = json.loads(raw)
        data["caption"] = CaptionInfo(**data["caption"])
        return cls(**data)

    def with_progress(self, message_id: int | None, *, is_photo: bool) -> Route:
        return replace(self, progress_message_id=message_id, progress_is_photo=is_photo)


class Routes:
    """Routes, the per-chat rate gate and the redelivery schedule, all in Redis, under the deployment's namespace
    (``IMPASTO_QUEUE_NAMESPACE``): the same one its workers publish job events in."""

    def __init__(self, redis: Redis, *, ns: Namespace = DEFAULT) -> None:
        self.redis = redis
        self.ns = ns
        self.prefix = ns.prefix + "telegram:"

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    async def save(self, route: Route) -> None:
        await self.redis.set(self.key("route", route.job_id), route.to_json(), ex=ROUTE_TTL_S)

    async def get(self, job_id: str) -> Route | None:
        raw = await self.redis.get(self.key("route", job_id))
        return Route.from_json(raw) if raw else None

    async def gate(self, name: str, chat_id: int, interval_s: float) -> bool:
        """True at most once per ``interval_s`` per chat across every bot process (Telegram's edit limits)."""
        key = self.key("gate", name, chat_id)
        return bool(await self.redis.set(key, "1", nx=True, px=max(1, int(interval_s * 1000))))

    async def claim(self, name: str, job_id: str, ttl_s: float) -> bool:
        """One process does a job's delivery at a time; the claim expires if that process dies mid-way."""
        return bool(await self.redis.set(self.key("claim", name, job_id), "1", nx=True, px=int(ttl_s * 1000)))

    async def release(self, name: str, job_id: str) -> None:
        await self.redis.delete(self.key("claim", name, job_id))

    async def mark_delivered(self, job_id: str) -> bool:
        """True the first time: a result is posted once even if its event is handled twice."""
        return bool(await self.redis.set(self.key("delivered", job_id), "1", nx=True, ex=ROUTE_TTL_S))

    async def delivered(self, job_id: str) -> bool:
        return bool(await self.redis.exists(self.key("delivered", job_id)))

    async def count_orphan(self, job_id: str) -> int:
        """How often a result without a route was seen (kept a minute)."""
        key = self.key("orphan", job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60)
            count, _ = await pipe.execute()
        return int(count)

    async def schedule_redelivery(self, job_id: str, payload: str, delay_s: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("pending", job_id), payload, ex=ROUTE_TTL_S)
            pipe.zadd(self.key("redeliver"), {job_id: time.time() + delay_s})
            await pipe.execute()

    async def due_redeliveries(self, limit: int = 20) -> list[tuple[str, str]]:
        """``(job_id, payload)`` whose time has come; each is removed from the schedule by the process taking it."""
        due: list[tuple[str, str]] = []
        for raw_id in await self.redis.zrangebyscore(self.key("redeliver"), 0, time.time(), start=0, num=limit):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if await self.redis.zrem(self.key("redeliver"), job_id):  # only one process wins each entry
                payload = await self.redis.get(self.key("pending", job_id))
                if payload:
                    due.append((job_id, payload.decode() if isinstance(payload, bytes) else str(payload)))
        return due
