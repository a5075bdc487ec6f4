"""Lanes and fair shares, expressed as arq queue scores.

arq starts the job with the lowest score in its queue (``zrangebyscore … -inf now``) and a worker sized to one GPU
(``max_jobs=1``) takes exactly one at a time, so the score decides who paints next. We give every job a score at
enqueue, atomically in one Lua script:

* **Lanes**: each lane owns a band of scores, ``turbo`` < ``fast`` < ``relax``. Every band lies far in the past
  (1973–1979 in unix milliseconds), so a job is runnable at once and a relax job only runs when no turbo or fast job
  waits.
* **Fairness inside a lane**: start-time fair queueing. Each lane has a virtual clock ``V`` (the tag of the job
  started last); each user a finish tag ``F``. A new job gets the tag ``S = max(V, F)`` and moves its user's ``F`` to
  ``S + cost``. One user's 40 jobs get tags V, V+1, …, V+39; another user's single job gets V and runs next.
* **Between guilds**: a job's cost is the number of users with jobs waiting in its guild's part of the lane, so a
  guild with three busy members advances each of them three times as fast as a guild with one: each *guild* gets an
  equal share and splits it among its members. DMs and the console count as a guild of one user each.

What this does not do: tags are fixed at enqueue, so a guild's share adapts as its members' next jobs arrive, not
retroactively; and a job already running is not pre-empted.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from impasto.queue import keys
from impasto.queue.contract import Lane, RenderRequest

#: The score band of each lane, in arq's unit (unix ms). Far below "now", above zero (arq treats score 0 as absent).
LANE_BASE_SCORE: dict[Lane, int] = {"turbo": 100_000_000_000, "fast": 200_000_000_000, "relax": 300_000_000_000}

#: How long a job's tag memo lives: longer than any job may wait.
TAG_TTL_S = 3 * 24 * 3600

# The tag assignment as a fragment that leaves the job's score (a string) in ``score``, for ``client.enqueue``'s
# script, which assigns and queues in one command. KEYS: the job's tag memo, the lane's clock, its
# users' finish tags, the guild's waiting users. ARGV: the user, the lane's base score, the memo's TTL.
ASSIGN_FRAGMENT = """
local score = redis.call('GET', KEYS[1])
if not score then
  local v = tonumber(redis.call('GET', KEYS[2]) or '0')
  local f = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
  redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
  local cost = redis.call('HLEN', KEYS[4])
  local s = math.max(v, f)
  redis.call('HSET', KEYS[3], ARGV[1], tostring(s + cost))
  score = tostring(tonumber(ARGV[2]) + s)
  redis.call('SET', KEYS[1], score, 'EX', tonumber(ARGV[3]))
end
"""

_STARTED = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local s = tonumber(ARGV[1])
if s > v then
  redis.call('SET', KEYS[1], ARGV[1])
  v = s
end
if ARGV[3] == '1' then
  local n = redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
  if n <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
end
local f = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if f <= v then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"""


def _guild_of(request: RenderRequest) -> str:
    # A DM or console job is its own guild of one: its cost is always 1.
    return request.guild_key or f"dm:{request.user_key}"


def assign_keys(request: RenderRequest, *, ns: keys.Namespace = keys.DEFAULT) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of ``ASSIGN_FRAGMENT`` for this job (the first four keys and three arguments of a script)."""
    lane = request.lane
    return (
        [
            ns.job_tag(request.job_id),
            ns.lane_clock(lane),
            ns.lane_user_finish(lane),
            ns.lane_guild_users(lane, _guild_of(request)),
        ],
        [request.user_key, str(LANE_BASE_SCORE[lane]), str(TAG_TTL_S)],
    )


async def job_started(
    redis: Redis, request: RenderRequest, *, score: int, first_try: bool, ns: keys.Namespace = keys.DEFAULT
) -> None:
    """Advance the lane's clock past a job that starts; it no longer waits in its guild."""
    pipe = redis.pipeline(transaction=False)
    add_job_started(pipe, request, score=score, first_try=first_try, ns=ns)
    await pipe.execute()


def add_job_started(
    pipe: Pipeline, request: RenderRequest, *, score: int, first_try: bool, ns: keys.Namespace = keys.DEFAULT
) -> None:
    """``job_started`` as one command of the caller's pipeline: a starting job tells Redis all it has to in one
    round trip (``queue.functions``). EVAL, not a registered script: a pipeline of EVALSHAs asks Redis whether the
    scripts exist first, a round trip more, and Redis caches what EVAL compiles."""
    pipe.eval(
        _STARTED,
        3,
        ns.lane_clock(request.lane),
        ns.lane_user_finish(request.lane),
        ns.lane_guild_users(request.lane, _guild_of(request)),
        str(score - LANE_BASE_SCORE[request.lane]),
        request.user_key,
        "1" if first_try else "0",
    )
