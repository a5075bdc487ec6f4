"""Progress and completion events that any bot process can hear: one capped Redis stream.

A stream, not pub/sub, because a bot that restarts must still post the grids that finished while it was down:
``consume`` reads through a consumer group per platform (unacknowledged entries come back after a crash),
``listen`` follows the stream from a point for one process (the console's progress bar).

Every entry has three fields: ``job`` (the job id), ``kind`` and ``data`` (the event as JSON). Terminal events
(``done``, ``failed``, ``cancelled``) are published at most once per job (``publish_final``); a job re-run after a
crash publishes nothing again once its row is final.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from impasto.queue import keys

#: Entries kept in the stream (approximate trim); a day of a busy service.
STREAM_MAXLEN = 100_000
#: How long the "terminal event published" marker lives.
FINAL_MARKER_TTL_S = 7 * 24 * 3600


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    job_id: str

    @property
    def final(self) -> bool:
        return False


class Queued(_Event):
    """Waiting; ``position`` jobs are ahead (running ones included). Sent at enqueue and as the queue moves."""

    kind: Literal["queued"] = "queued"
    position: int


class Started(_Event):
    kind: Literal["started"] = "started"
    worker: str
    attempt: int = 1


class Progress(_Event):
    """A denoising step. ``preview_png`` (small, at most about one a second per job) is base64 on the wire."""

    kind: Literal["progress"] = "progress"
    step: int
    total: int
    preview_png_b64: str | None = None

    @property
    def preview_png(self) -> bytes | None:
        return base64.b64decode(self.preview_png_b64) if self.preview_png_b64 else None


class Done(_Event):
    """The job's images are in the image store; ``grid_key`` is the 2×2 composition when there are several."""

    kind: Literal["done"] = "done"
    image_keys: list[str]
    grid_key: str | None = None
    seed: int = 0
    gpu_seconds: float = 0.0
    paints_noise: bool = False  # a tiny built-in model: the pictures are noise, say so

    @property
    def final(self) -> bool:
        return True


class Failed(_Event):
    kind: Literal["failed"] = "failed"
    message: str  # one line, safe to show the user
    refunded: bool = True

    @property
    def final(self) -> bool:
        return True


class Cancelled(_Event):
    kind: Literal["cancelled"] = "cancelled"
    refunded: bool = True

    @property
    def final(self) -> bool:
        return True


Event = Annotated[Queued | Started | Progress | Done | Failed | Cancelled, Field(discriminator="kind")]
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass(frozen=True)
class Delivery:
    """One event read through a consumer group: ``ack`` it once handled, or it is delivered again."""

    entry_id: str
    event: Event


def _fields(event: Event) -> dict[str, str]:
    return {"job": event.job_id, "kind": event.kind, "data": event.model_dump_json()}


def _field(fields: dict[Any, Any], name: str) -> str:
    """A stream entry field, whether the client decodes responses (str keys) or not (bytes, as arq's pool)."""
    value = fields.get(name.encode(), fields.get(name, b""))
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(fields: dict[Any, Any]) -> Event:
    return _EVENT.validate_json(_field(fields, "data"))


async def publish(redis: Redis, event: Event) -> str:
    """Append a non-terminal event (queued, started, progress)."""
    entry = await redis.xadd(keys.EVENTS_STREAM, cast(Any, _fields(event)), maxlen=STREAM_MAXLEN, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'job', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5])
end
return false
"""


async def publish_final(redis: Redis, event: Event) -> bool:
    """Append a terminal event unless one was already published for the job; True if this call published it."""
    fields = _fields(event)
    result = await cast(Any, redis).eval(
        _PUBLISH_ONCE,
        2,
        keys.job_final(event.job_id),
        keys.EVENTS_STREAM,
        FINAL_MARKER_TTL_S,
        STREAM_MAXLEN,
        fields["job"],
        fields["kind"],
        fields["data"],
    )
    return result is not None


async def last_id(redis: Redis) -> str:
    """The id of the newest entry ("0-0" when empty): listen from here to miss nothing published after this call."""
    newest = await redis.xrevrange(keys.EVENTS_STREAM, count=1)
    if not newest:
        return "0-0"
    entry_id = newest[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def listen(
    redis: Redis,
    *,
    job_ids: Collection[str] | None = None,
    since: str = "$",
    until_final: bool = True,
    block_ms: int = 1000,
) -> AsyncIterator[Event]:
    """Follow the stream from ``since`` (an entry id, "0-0" for everything kept, "$" for new only).

    With ``job_ids`` only those jobs' events are yielded, and with ``until_final`` the iteration ends once every one
    of them had its terminal event. Without ``job_ids`` it runs until the caller stops iterating.
    """
    wanted = set(job_ids) if job_ids is not None else None
    pending = set(wanted) if wanted is not None else None
    cursor = since
    if cursor == "$":
        cursor = await last_id(redis)
    while True:
        batches = await redis.xread({keys.EVENTS_STREAM: cursor}, count=100, block=block_ms)
        for _stream, entries in batches or []:
            for entry_id, fields in entries:
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                if wanted is not None and _field(fields, "job") not in wanted:
                    continue
                event = _parse(fields)
                yield event
                if pending is not None and event.final:
                    pending.discard(event.job_id)
        if until_final and pending is not None and not pending:
            return


async def ensure_group(redis: Redis, group: str, *, start: str = "$") -> None:
    """Create a consumer group (e.g. "telegram", "discord") if it does not exist; ``start`` "$" means new events."""
    try:
        await redis.xgroup_create(keys.EVENTS_STREAM, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def consume(
    redis: Redis, *, group: str, consumer: str, block_ms: int = 5000, count: int = 50
) -> AsyncIterator[Delivery]:
    """Every event, once per group: what this consumer left unacknowledged before a restart first, then new ones.

    Each process of one platform uses the same ``group`` and its own ``consumer`` name; ``ack`` what you handled.
    """
    await ensure_group(redis, group)
    backlog = True
    cursor = "0"  # first our own pending entries (from "0" on, advancing), then ">" = never delivered to the group
    while True:
        batches = await redis.xreadgroup(
            group, consumer, {keys.EVENTS_STREAM: cursor}, count=count, block=None if backlog else block_ms
        )
        entries = [entry for _stream, stream_entries in batches or [] for entry in stream_entries]
        if backlog and not entries:
            backlog, cursor = False, ">"
            continue
        for entry_id, fields in entries:
            entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if backlog:
                cursor = entry
            if not fields:  # trimmed from the stream while pending: nothing left to deliver
                await ack(redis, group, entry)
                continue
            yield Delivery(entry, _parse(fields))


async def ack(redis: Redis, group: str, entry_id: str) -> None:
    await redis.xack(keys.EVENTS_STREAM, group, entry_id)


async def history(redis: Redis, job_id: str, *, limit: int = 10_000) -> list[Event]:
    """Every kept event of one job, oldest first (tests, `impasto` diagnostics)."""
    entries = await redis.xrange(keys.EVENTS_STREAM, count=limit)
    return [_parse(f) for _id, f in entries if _field(f, "job") == job_id]
