"""Every Redis key impasto's queue writes, in one place (as arq keeps its own in ``arq.constants``).

arq's own keys (``arq:job:<id>``, ``arq:in-progress:<id>``, ``arq:result:<id>``, ``arq:retry:<id>``) stay arq's; the
ones below are ours. All start with ``impasto:`` so an operator can tell them apart in ``redis-cli --scan``.
"""

from __future__ import annotations

PREFIX = "impasto:"

#: The one arq queue (a sorted set) every GPU worker consumes. Lanes and fairness live in the scores, not in
#: separate queues: arq starts the lowest score first, so the score *is* the scheduling order (see ``fairness``).
QUEUE_NAME = PREFIX + "queue"

#: The arq function name of the render job. Callers never write it: ``client.enqueue`` does.
RENDER_FUNCTION = "impasto_render"

#: The progress and completion event stream (Redis stream, capped). See ``events``.
EVENTS_STREAM = PREFIX + "events"

#: Lane virtual clock: the fair tag of the last job started in the lane (a string float).
LANE_CLOCK = PREFIX + "fair:{lane}:clock"

#: Hash user key → the virtual finish tag of that user's latest queued job in the lane.
LANE_USER_FINISH = PREFIX + "fair:{lane}:finish"

#: Hash user key → how many of the user's jobs wait in that guild's part of the lane (the guild's active users).
LANE_GUILD_USERS = PREFIX + "fair:{lane}:guild:{guild}"

#: The fair tag given to one job (so enqueueing it twice neither moves it nor charges its user twice in time).
JOB_TAG = PREFIX + "tag:{job_id}"

#: Set when a job's terminal event (done / failed / cancelled) was published: at most one per job.
JOB_FINAL = PREFIX + "final:{job_id}"


def lane_clock(lane: str) -> str:
    return LANE_CLOCK.format(lane=lane)


def lane_user_finish(lane: str) -> str:
    return LANE_USER_FINISH.format(lane=lane)


def lane_guild_users(lane: str, guild: str) -> str:
    return LANE_GUILD_USERS.format(lane=lane, guild=guild)


def job_tag(job_id: str) -> str:
    return JOB_TAG.format(job_id=job_id)


def job_final(job_id: str) -> str:
    return JOB_FINAL.format(job_id=job_id)
