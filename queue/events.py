"""Progress and completion events that any bot process can hear: one capped Redis stream.

A stream, not pub/sub, because a bot that restarts must still post the grids that finished while it was down:
``consume`` reads through a consumer group per platform (unacknowledged entries come back after a crash),
``listen`` follows the stream from a point for one process (the console's progress bar).

The stream is the namespace's (``keys.Namespace.events``): each deployment, and each test session sharing a Redis,
hears only its own jobs. Every function takes the ``ns`` its caller's workers use (``keys.namespace_from_env()``).

Every entry has three fields: ``job`` (the job id), ``kind`` and ``data`` (the event as JSON). Terminal events
(``done``, ``failed``, ``cancelled``) are published at most once per job (``publish_final``); a job re-run after a
crash publishes nothing again once its row is final.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from impasto.queue import keys

#: Entries kept in the stream (approximate trim); a day of a busy service.
STREAM_MAXLEN = 100_000
#: How long another consumer's unacknowledged entry waits before a quiet consumer of the group takes it over.
RECLAIM_IDLE_MS = 60_000
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
    read_as: str | None = None  # the English the model read, when the worker translated the prompt
    # The images (1–4, as ``image_keys``) the worker's classifier flagged; delivery decides what that means where
    # the job was asked (``bots/moderation/outputs.py``). Empty when none was flagged or no classifier ran.
    flagged: list[int] = Field(default_factory=list)
    # A /describe job's four prompts (it has no images); also in SQL (``jobs.described``) for its buttons.
    prompts: list[str] = Field(default_factory=list)

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


async def publish(redis: Redis, event: Event, *, ns: keys.Namespace = keys.DEFAULT) -> str:
    """Append a non-terminal event (queued, started, progress)."""
    entry = await redis.xadd(ns.events, cast(Any, _fields(event)), maxlen=STREAM_MAXLEN, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def add(pipe: Pipeline, event: Event, *, ns: keys.Namespace = keys.DEFAULT) -> None:
    """``publish`` as one command of the caller's pipeline."""
    pipe.xadd(ns.events, cast(Any, _fields(event)), maxlen=STREAM_MAXLEN, approximate=True)


_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'job', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5])
end
return false
"""


async def publish_final(
    redis: Redis, event: Event, *, ns: keys.Namespace = keys.DEFAULT, before: Sequence[Event] = ()
) -> bool:
    """Append a terminal event unless one was already published for the job; True if this call published it.

    ``before``: non-terminal events still to publish ahead of it (a render's last progress), sent in the same round
    trip, in order.
    """
    fields = _fields(event)
    pipe = redis.pipeline(transaction=False)
    for early in before:
        add(pipe, early, ns=ns)
    pipe.eval(
        _PUBLISH_ONCE,
        2,
        ns.job_final(event.job_id),
        ns.events,
        str(FINAL_MARKER_TTL_S),
        str(STREAM_MAXLEN),
        fields["job"],
        fields["kind"],
        fields["data"],
    )
    results = await pipe.execute()
    return results[-1] is not None


# The positions of the first waiting jobs, as ``Queued`` events (the fields ``publish`` writes, with the JSON that
# ``Queued.model_dump_json`` makes), built in Redis: the 25 or so events of a job start cost one command, not a
# pydantic model and a packed command each. A job is skipped when it is the one starting or a worker holds it. Told
# at most once per interval (the gate key): in a burst every start moves every position, and the bots edit a message
# at most every two seconds anyway, so more events would only be read and dropped by every bot process.
# KEYS: queue, event stream, the gate. ARGV: how many, the starting job, arq's in-progress key prefix, the stream's
# MAXLEN, the interval in ms (0: every start).
_POSITIONS = """
local count = tonumber(ARGV[1])
if count <= 0 then return 0 end
local interval = tonumber(ARGV[5])
if interval > 0 and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', interval) then return 0 end
local told = 0
for i, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, count)) do
  if id ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. id) == 0 then
    local data = cjson.encode({job_id = id, kind = 'queued', position = i - 1})
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'job', id, 'kind', 'queued', 'data', data)
    told = told + 1
  end
end
return told
"""


def add_positions(
    pipe: Pipeline, count: int, *, starting: str, held_prefix: str, interval_s: float, ns: keys.Namespace
) -> None:
    """Tell the first ``count`` waiting jobs how many jobs are ahead of them (jobs being painted included), unless
    they were told less than ``interval_s`` ago, as one command of the caller's pipeline. ``held_prefix``: the key
    prefix that marks a job a worker holds (arq's in-progress keys). EVAL in a pipeline, not a registered script: see
    ``fairness.add_job_started``."""
    interval_ms = str(int(interval_s * 1000))
    pipe.eval(
        _POSITIONS,
        3,
        ns.queue,
        ns.events,
        ns.positions_told,
        str(count),
        starting,
        held_prefix,
        str(STREAM_MAXLEN),
        interval_ms,
    )


async def last_id(redis: Redis, *, ns: keys.Namespace = keys.DEFAULT) -> str:
    """The id of the newest entry ("0-0" when empty): listen from here to miss nothing published after this call."""
    newest = await redis.xrevrange(ns.events, count=1)
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
    ns: keys.Namespace = keys.DEFAULT,
) -> AsyncIterator[Event]:
    """Follow the stream from ``since`` (an entry id, "0-0" for everything kept, "$" for new only).

    With ``job_ids`` only those jobs' events are yielded, and with ``until_final`` the iteration ends once every one
    of them had its terminal event. Without ``job_ids`` it runs until the caller stops iterating.
    """
    wanted = set(job_ids) if job_ids is not None else None
    pending = set(wanted) if wanted is not None else None
    cursor = since
    if cursor == "$":
        cursor = await last_id(redis, ns=ns)
    while True:
        batches = await redis.xread({ns.events: cursor}, count=100, block=block_ms)
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


async def ensure_group(redis: Redis, group: str, *, start: str = "$", ns: keys.Namespace = keys.DEFAULT) -> None:
    """Create a consumer group (e.g. "telegram", "discord") if it does not exist; ``start`` "$" means new events."""
    try:
        await redis.xgroup_create(ns.events, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def consume(
    redis: Redis,
    *,
    group: str,
    consumer: str,
    block_ms: int = 5000,
    count: int = 50,
    reclaim_idle_ms: int | None = RECLAIM_IDLE_MS,
    ns: keys.Namespace = keys.DEFAULT,
) -> AsyncIterator[Delivery]:
    """Every event, once per group: what this consumer left unacknowledged before a restart first, then new ones.

    Each process of one platform uses the same ``group`` and its own ``consumer`` name; ``ack`` what you handled.
    With ``reclaim_idle_ms``, entries another consumer has held unacknowledged that long are taken over when the
    stream is quiet: a process that died (or was renamed, or scaled away) leaves nothing stuck in its pending list.
    A reader stopped mid-read can leave one there too: Redis hands an entry to a blocked read even if its client is
    gone. Handlers must therefore be idempotent (the delivery core claims each job's end once).
    """
    await ensure_group(redis, group, ns=ns)
    backlog = True
    cursor = "0"  # first our own pending entries (from "0" on, advancing), then ">" = never delivered to the group
    while True:
        batches = await redis.xreadgroup(
            group, consumer, {ns.events: cursor}, count=count, block=None if backlog else block_ms
        )
        entries = [entry for _stream, stream_entries in batches or [] for entry in stream_entries]
        if backlog and not entries:
            backlog, cursor = False, ">"
            continue
        if not backlog and not entries and reclaim_idle_ms is not None:
            reclaimed = await redis.xautoclaim(ns.events, group, consumer, min_idle_time=reclaim_idle_ms, count=count)
            entries = list(reclaimed[1]) if reclaimed else []
        for entry_id, fields in entries:
            entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if backlog:
                cursor = entry
            if not fields:  # trimmed from the stream while pending: nothing left to deliver
                await ack(redis, group, entry, ns=ns)
                continue
            yield Delivery(entry, _parse(fields))


async def ack(redis: Redis, group: str, entry_id: str, *, ns: keys.Namespace = keys.DEFAULT) -> None:
    await redis.xack(ns.events, group, entry_id)


async def history(redis: Redis, job_id: str, *, limit: int = 10_000, ns: keys.Namespace = keys.DEFAULT) -> list[Event]:
    """Every kept event of one job, oldest first (tests, `impasto` diagnostics)."""
    entries = await redis.xrange(ns.events, count=limit)
    return [_parse(f) for _id, f in entries if _field(f, "job") == job_id]
