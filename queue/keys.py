"""Every Redis key impasto's queue writes, in one place (as arq keeps its own in ``arq.constants``).

arq's own keys (``arq:job:<id>``, ``arq:in-progress:<id>``, ``arq:result:<id>``, ``arq:retry:<id>``) stay arq's; the
ones below are ours. All start with ``impasto:`` so an operator can tell them apart in ``redis-cli --scan``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "impasto:"

#: The arq function name of the render job. Callers never write it: ``client.enqueue`` does.
RENDER_FUNCTION = "impasto_render"


@dataclass(frozen=True)
class Namespace:
    """Where one deployment's queue and fair-share state live in Redis.

    Production uses ``DEFAULT``; a staging deployment sharing a Redis, or a test session sharing db 15 with others,
    uses its own prefix so that no other worker takes its jobs and no other bot hears its events. Every key impasto
    writes (the queue, fairness, the event stream, the bots' claims and gates) starts with the prefix.
    """

    prefix: str = PREFIX

    @property
    def queue(self) -> str:
        """The arq queue (a sorted set) the workers consume. Lanes and fairness live in its scores."""
        return self.prefix + "queue"

    @property
    def wake(self) -> str:
        """A list an idle worker blocks on (BLPOP); ``enqueue`` pushes to it so that a new job starts at once.

        Capped and expiring (``client.WAKE_CAP``, ``client.WAKE_TTL_S``): a push no worker took is a spare wake-up.
        """
        return self.prefix + "wake"

    def lane_clock(self, lane: str) -> str:
        """The lane's virtual clock: the fair tag of the job started last (a string number)."""
        return f"{self.prefix}fair:{lane}:clock"

    def lane_user_finish(self, lane: str) -> str:
        """Hash user key → the virtual finish tag of that user's latest queued job in the lane."""
        return f"{self.prefix}fair:{lane}:finish"

    def lane_guild_users(self, lane: str, guild: str) -> str:
        """Hash user key → how many of the user's jobs wait in that guild's part of the lane."""
        return f"{self.prefix}fair:{lane}:guild:{guild}"

    @property
    def positions_told(self) -> str:
        """Set (for ``WorkerConfig.positions_interval_s``) when waiting jobs were last told their positions: a burst of
        starts tells them once per interval, not 25 events per start (``events.add_positions``)."""
        return self.prefix + "positions-told"

    @property
    def sweep_turn(self) -> str:
        """Held by the worker whose turn it is to sweep (``queue.sweep``); expires before the next turn is due."""
        return self.prefix + "sweep-turn"

    def rate_bucket(self, scope: str, *parts: str) -> str:
        """A token bucket of ``queue.ratelimit`` (a hash; expires once refilled): ``rate:user:<platform>:<id>`` …"""
        return f"{self.prefix}rate:{scope}:" + ":".join(parts)

    @property
    def events(self) -> str:
        """The deployment's progress and completion event stream (``events``)."""
        return self.prefix + "events"

    def job_final(self, job_id: str) -> str:
        """Set when a job's terminal event was published in this namespace: at most one per job."""
        return f"{self.prefix}final:{job_id}"

    def serving(self, worker: str) -> str:
        """JSON list of the models a live worker serves (empty: all), refreshed while it runs (``queue.served``)."""
        return f"{self.prefix}serving:{worker}"

    def job_tag(self, job_id: str) -> str:
        """The fair score given to one job, so that enqueueing it twice neither moves it nor counts twice."""
        return f"{self.prefix}tag:{job_id}"


DEFAULT = Namespace()

#: The environment variable naming a deployment's namespace (the Redis key prefix); unset: ``DEFAULT``.
NAMESPACE_ENV = "IMPASTO_QUEUE_NAMESPACE"


def namespace_from_env(environ: Mapping[str, str] | None = None) -> Namespace:
    """The namespace ``IMPASTO_QUEUE_NAMESPACE`` names (call it in ``main()``); bots and workers must agree."""
    value = (environ if environ is not None else os.environ).get(NAMESPACE_ENV)
    return Namespace(value) if value else DEFAULT


#: The default deployment's queue (``DEFAULT.queue``).
QUEUE_NAME = DEFAULT.queue
